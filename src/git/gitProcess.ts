import { ChildProcess, spawn } from 'node:child_process';
import { GitfsError } from '../errors/errors';
import { classifyGitFailure, FailureContext, timeoutFailure } from './gitFailure';
import { gitEnvironment, offersCredentials, RemoteAccess } from './gitEnvironment';
import { pinnedAccess } from './remoteAddresses';

export interface GitRun {
  args: string[];
  /** The git directory to run in (GIT_DIR); absent for commands that need none. */
  gitDir?: string;
  access?: RemoteAccess;
  extraConfig?: Array<[string, string]>;
  input?: string | Buffer;
  timeoutMs: number;
  /** Fetch blobs too (no partial-clone filter). */
  withBlobs?: boolean;
  /** Variables for this process beyond the project's environment (GIT_PROTOCOL). */
  extraEnv?: NodeJS.ProcessEnv;
}

export interface GitOutput {
  stdout: Buffer;
  stderr: string;
}

/**
 * Starts git with the project's environment, in its own process group so a timeout can
 * kill it together with its helpers (remote-https, ssh). Asynchronous only: a synchronous
 * child in the process that serves a FUSE mount can deadlock it.
 */
export function spawnGit(run: GitRun): ChildProcess {
  const env = { ...gitEnvironment(run.access, run.extraConfig, process.env, run.withBlobs), ...run.extraEnv };
  if (run.gitDir) env.GIT_DIR = run.gitDir;
  const child = spawn('git', run.args, { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  if (!child.stdin || !child.stdout || !child.stderr) {
    // Node reports EMFILE/ENFILE on the next tick and hands back a child without pipes.
    child.on('error', () => undefined);
    throw new GitfsError('transient', `cannot start git ${run.args[0]}: the node plugin has no file descriptors left (EMFILE/ENFILE); raise its open-files limit`);
  }
  return child;
}

export function killGit(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

function failureContext(run: GitRun): FailureContext {
  return {
    repository: run.access?.remote.display ?? run.gitDir ?? 'local repository',
    credentialsOffered: run.access ? offersCredentials(run.access) : false,
    command: run.args.find((a) => !a.startsWith('-')) ?? run.args[0] ?? 'git',
  };
}

/**
 * Runs git to completion, buffering its output; failures come back as typed errors. A command
 * that talks to a remote under a policy connects only to the addresses checked as it starts.
 */
export async function runGit(run: GitRun): Promise<GitOutput> {
  const access = run.access && (await pinnedAccess(run.access));
  return new Promise((resolve, reject) => {
    const child = spawnGit({ ...run, access });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGit(child);
    }, run.timeoutMs);
    child.stdout!.on('data', (b: Buffer) => stdout.push(b));
    child.stderr!.on('data', (b: Buffer) => stderr.push(b));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new GitfsError('internal', `cannot run git: ${err.message}`, { cause: err }));
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const errText = Buffer.concat(stderr).toString('utf8');
      if (timedOut) return reject(timeoutFailure(failureContext(run), run.timeoutMs));
      if (code !== 0) return reject(classifyGitFailure(errText, code, failureContext(run)));
      resolve({ stdout: Buffer.concat(stdout), stderr: errText });
    });
    child.stdin!.on('error', () => undefined); // git may exit before reading all input
    child.stdin!.end(run.input ?? '');
  });
}

import { ChildProcess, spawn } from 'node:child_process';
import { chown, mkdir, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { MountEntry, readMountTable } from '../../src/mount/mountTable';

/** The built CLI (this file runs as dist/test/support/). */
export const MAIN = resolve(__dirname, '../../src/cli/main.js');

/** The unprivileged user nobody's uid, also its gid. */
export const NOBODY = 65534;

/** Runs a command as the unprivileged user nobody (no supplementary groups). */
export const AS_NOBODY = ['/usr/bin/setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups'];

/** Creates each directory (with `mode`, if given) owned by nobody, for a CLI run as that user. */
export async function dirsOfNobody(paths: string[], mode?: number): Promise<void> {
  for (const path of paths) {
    await mkdir(path, { mode });
    await chown(path, NOBODY, NOBODY);
  }
}

/** How to start the CLI: its arguments go after `node main.js`; `wrap` runs it through setpriv, …; `command` replaces the whole line. */
export interface CliOptions {
  wrap?: string[];
  command?: string[];
  env?: NodeJS.ProcessEnv;
}

export interface RunningCli {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
  /** The CLI's own pid (not a wrapper's): setpriv and runuser exec it, unshare -m forks. */
  pid(): Promise<number>;
}

export function startCli(args: string[], options: CliOptions = {}): RunningCli {
  const command = options.command ?? [...(options.wrap ?? []), process.execPath, MAIN, ...args];
  const child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
  const exited = new Promise<number | null>((r) => child.on('close', (code, signal) => r(signal ? -1 : code)));
  const running: RunningCli = { child, stdout: '', stderr: '', exited, pid: () => cliPid(child.pid!) };
  child.stdout!.on('data', (c) => (running.stdout += c));
  child.stderr!.on('data', (c) => (running.stderr += c));
  return running;
}

/** Runs the CLI to its end. */
export async function runCli(args: string[], options: CliOptions = {}): Promise<{ code: number | null; stdout: string; stderr: string; pid: number }> {
  const cli = startCli(args, options);
  const pid = await cli.pid().catch(() => cli.child.pid!);
  const code = await cli.exited;
  return { code, stdout: cli.stdout, stderr: cli.stderr, pid };
}

/** Waits until stdout matches `pattern` (the `ready` line); fails with stderr if the CLI exits first. */
export async function untilOutput(running: RunningCli, pattern: RegExp, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(running.stdout)) {
    if (running.child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${pattern} (exit ${running.child.exitCode}): ${running.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The node process running main.js: the child itself or, behind a wrapper that forks, its descendant. */
async function cliPid(pid: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const found = await findCli(pid);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 10));
  }
  return pid;
}

async function findCli(pid: number): Promise<number | undefined> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (cmdline.includes(MAIN) && cmdline.startsWith(process.execPath)) return pid;
  const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).split(' ').filter(Boolean);
  for (const child of children) {
    const found = await findCli(Number(child));
    if (found) return found;
  }
  return undefined;
}

/**
 * What a finished CLI left behind: mounts at `mountpoint` or under `dir` (in `mountTable`, by default this process's), its state
 * directory (`stateDir`), and processes that still use `dir`
 * (in their command line, working directory or environment: git children carry GIT_DIR), within 2 s.
 */
export async function leftBehind(options: { pid: number; dir: string; mountpoint?: string; stateDir: string; mountTable?: () => Promise<MountEntry[]> }): Promise<string[]> {
  const left: string[] = [];
  for (const m of await (options.mountTable ?? readMountTable)()) {
    if (m.mountPoint === options.mountpoint || m.mountPoint.startsWith(`${options.dir}/`)) left.push(`mount ${m.fsType} at ${m.mountPoint}`);
  }
  if (await stat(options.stateDir).then(() => true, () => false)) left.push(`state directory ${options.stateDir}`);
  // A child killed as the CLI ended (SIGKILL to a git process group) may take a moment to go.
  let processes = await processesUsing(options.dir);
  for (let i = 0; i < 40 && processes.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    processes = await processesUsing(options.dir);
  }
  return [...left, ...processes];
}

async function processesUsing(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const facts = await Promise.all([readFile(`/proc/${entry}/cmdline`, 'utf8'), readlink(`/proc/${entry}/cwd`), readFile(`/proc/${entry}/environ`, 'utf8')].map((p) => p.catch(() => '')));
    if (facts.some((f) => f.includes(dir))) found.push(`process ${entry}: ${facts[0].replace(/\0/g, ' ').trim()}`);
  }
  return found;
}

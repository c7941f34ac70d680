import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import { FuseUnavailable } from '../errors/errors';
import { fuseDevice } from '../fuse/fuseDevice';

/** Longest fusermount3 may take to mount or unmount (it takes milliseconds). */
const FUSERMOUNT_MS = 30_000;

/**
 * A FUSE mount made by a user, through the setuid fusermount3 (the protocol libfuse and ArtifactFS
 * use): we hand it one end of a unix socketpair as a descriptor named by `_FUSE_COMMFD`; it opens
 * /dev/fuse, mounts it at `dir` with `options` (plus fd=, rootmode=, user_id= and group_id= of
 * its own) and sends the /dev/fuse descriptor back over the socket with SCM_RIGHTS, in a message
 * of one byte; without `auto_unmount` it then exits. Returns the descriptor, non-blocking.
 */
export async function fusermountMount(dir: string, options: string): Promise<number> {
  const [ours, theirs] = fuseDevice().socketPair();
  let theirsOpen = true;
  const closeTheirs = () => {
    if (theirsOpen) closeSync(theirs);
    theirsOpen = false;
  };
  try {
    // stdio[3] is dup2'd into the child, which clears close-on-exec there: the child's fd 3 is `theirs`.
    // Our copy closes at once, so the stream ends when fusermount3 does.
    const exit = await fusermount(`mount ${dir}`, ['-o', options, '--', dir], theirs, closeTheirs);
    if (exit.code !== 0) {
      // fusermount3 opens the device with the user's own uid: a root-only /dev/fuse refuses every user.
      const hint = /open \/dev\/fuse: Permission denied/.test(exit.stderr) ? ' (a user mount needs /dev/fuse readable and writable by the user, mode 0666 as fuse3 installs it)' : '';
      throw new FuseUnavailable(`cannot mount ${dir} with fusermount3: ${exit.stderr || `it exited with ${exit.code}`}${hint}`);
    }
    // fusermount3 has exited, so the message is waiting or the stream has ended: this never blocks.
    const { fds } = fuseDevice().receiveFds(ours, 1);
    if (fds.length !== 1) {
      for (const fd of fds) closeSync(fd);
      await fusermountUnmount(dir).catch(() => undefined);
      throw new FuseUnavailable(`cannot mount ${dir}: fusermount3 exited without handing over the /dev/fuse descriptor`);
    }
    fuseDevice().setNonBlocking(fds[0]);
    return fds[0];
  } finally {
    closeTheirs();
    closeSync(ours);
  }
}

/** Detaches a user's FUSE mount at once (lazily: open files keep it until they close). */
export async function fusermountUnmount(dir: string): Promise<void> {
  const exit = await fusermount(`unmount ${dir}`, ['-u', '-z', '--', dir]);
  if (exit.code !== 0) throw new FuseUnavailable(`cannot unmount ${dir} with fusermount3: ${exit.stderr || `it exited with ${exit.code}`}`);
}

/** Runs fusermount3 asynchronously (a synchronous child could deadlock on our own mount). */
function fusermount(what: string, args: string[], commFd?: number, spawned?: () => void): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const stdio: Array<'ignore' | 'pipe' | number> = commFd === undefined ? ['ignore', 'ignore', 'pipe'] : ['ignore', 'ignore', 'pipe', commFd];
    const env = commFd === undefined ? process.env : { ...process.env, _FUSE_COMMFD: '3' };
    // Its own process group: a terminal's Ctrl-C reaches us, never a fusermount3 half-way through a mount.
    const child = spawn('fusermount3', args, { stdio, env, timeout: FUSERMOUNT_MS, detached: true });
    spawned?.();
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(new FuseUnavailable(`cannot ${what}: fusermount3 is not on PATH, and a user (uid ${process.getuid?.()}) mounts FUSE through it (install fuse3, or mount as root)`, { cause: err }));
      else reject(new FuseUnavailable(`cannot ${what}: fusermount3 did not run: ${err.message}`, { cause: err }));
    });
    child.on('close', (code) => resolve({ code, stderr: stderr.trim().split('\n').slice(-3).join('; ') }));
  });
}

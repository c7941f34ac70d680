import { execFile } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';

const read = (path: string) => readFile(path, 'utf8').then((s) => s.replace(/\0/g, ' ').trim(), () => '?');

/** Each thread of a process: name, state and where in the kernel it waits (root can read the stacks). */
async function threadsOf(pid: number): Promise<string[]> {
  const tids = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  return Promise.all(
    tids.map(async (tid) => {
      const base = `/proc/${pid}/task/${tid}`;
      const state = (await read(`${base}/stat`)).split(') ')[1]?.split(' ')[0] ?? '?';
      const stack = (await read(`${base}/stack`)).split('\n').slice(0, 6).map((l) => l.replace(/^\[<0>\] /, '')).join(' < ');
      return `  thread ${tid} ${await read(`${base}/comm`)} ${state} wchan=${await read(`${base}/wchan`)} ${stack}`;
    }),
  );
}

/** The process's children, recursively: what it is waiting for. */
async function childrenOf(pid: number): Promise<number[]> {
  const direct = (await Promise.all((await readdir(`/proc/${pid}/task`).catch(() => [] as string[])).map((tid) => read(`/proc/${pid}/task/${tid}/children`))))
    .flatMap((s) => s.split(/\s+/))
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
  return [...direct, ...(await Promise.all(direct.map(childrenOf))).flat()];
}

/** What each open descriptor is (a file's path, `pipe:[inode]`, `socket:[inode]`): which one a blocked read is on. */
async function descriptorsOf(pid: number): Promise<string> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  const targets = await Promise.all(fds.map(async (fd) => `${fd}=${await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '?')}`));
  return `  descriptors: ${targets.sort((a, b) => parseInt(a, 10) - parseInt(b, 10)).join(' ')}`;
}

/** The main thread's native stack, where gdb is installed: what called into the kernel wait. */
function nativeStackOf(pid: number): Promise<string> {
  return new Promise((resolve) => {
    execFile('gdb', ['-p', String(pid), '-batch', '-ex', 'bt 25'], { timeout: 30_000, maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err && !stdout) return resolve('  native stack: unavailable (no gdb, or it could not attach)');
      resolve(`  native stack of the main thread:\n${stdout.split('\n').filter((l) => /^#\d/.test(l)).map((l) => `    ${l}`).join('\n')}`);
    });
  });
}

/**
 * A post-mortem of a process that stopped answering: every thread's kernel wait, its open
 * descriptors and its main thread's native stack, and every child's command line and wait.
 * Attached to a failing test's message, so a hang in CI explains itself.
 */
export async function processReport(pid: number): Promise<string> {
  const lines = [`process ${pid}: ${await read(`/proc/${pid}/cmdline`)}`, ...(await threadsOf(pid)), await descriptorsOf(pid), await nativeStackOf(pid)];
  for (const child of await childrenOf(pid)) lines.push(`child ${child}: ${await read(`/proc/${child}/cmdline`)}`, ...(await threadsOf(child)));
  return lines.join('\n');
}

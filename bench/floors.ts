import { execFile, spawn } from 'node:child_process';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const SOURCES = join(__dirname, '..', '..', 'bench', 'floor');
const URING_SWITCH = '/sys/module/fuse/parameters/enable_uring';

/**
 * The floors a FUSE row is measured against, each a server of its own over a directory:
 * - `c`: a minimal libfuse 3 low-level server (bench/floor/cFloor.c), each answer from the directory;
 * - `memory`: our protocol without us (bench/floor/rawFloor.c), the tree indexed in memory first,
 *   on /dev/fuse as our serving threads are;
 * - `uring`: the same over FUSE over io_uring, which this kernel has but leaves off.
 */
export type Floor = 'c' | 'memory' | 'uring';

const BINARIES: Record<Floor, { binary: string; args: string[] }> = {
  c: { binary: join(__dirname, 'c-floor-server'), args: [] },
  memory: { binary: join(__dirname, 'raw-floor-server'), args: [] },
  uring: { binary: join(__dirname, 'raw-floor-server'), args: ['--uring'] },
};

/** Compiles the floor servers once, installing libfuse 3's and liburing's headers if missing. */
export async function buildFloors(): Promise<void> {
  const missing: string[] = [];
  if (!(await present('/usr/include/fuse3/fuse_lowlevel.h'))) missing.push('libfuse3-dev');
  if (!(await present('/usr/include/liburing.h'))) missing.push('liburing-dev');
  if (missing.length > 0) await exec('apt-get', ['install', '-y', '-qq', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  const cc = process.env.CC ?? 'cc';
  const flags = ['-O2', '-Wall', '-Wextra', '-Werror'];
  await exec(cc, [...flags, '-I/usr/include/fuse3', '-o', BINARIES.c.binary, join(SOURCES, 'cFloor.c'), '-lfuse3', '-lpthread']);
  await exec(cc, [...flags, '-o', BINARIES.memory.binary, join(SOURCES, 'rawFloor.c'), '-luring', '-lpthread']);
}

/** Whether this kernel has FUSE over io_uring (the switch exists, whatever it is set to). */
export function uringAvailable(): Promise<boolean> {
  return present(URING_SWITCH);
}

/**
 * Serves `source` at `mountpoint` with `floor` for as long as `work` runs, then unmounts it. The
 * io_uring floor turns the kernel's switch on for its run and back as it was.
 */
export async function withFloor<T>(floor: Floor, source: string, mountpoint: string, work: () => Promise<T>): Promise<T> {
  const uringWas = floor === 'uring' ? (await readFile(URING_SWITCH, 'utf8')).trim() : undefined;
  if (uringWas !== undefined) await writeFile(URING_SWITCH, 'Y');
  await mkdir(mountpoint, { recursive: true });
  const { binary, args } = BINARIES[floor];
  const server = spawn(binary, [...args, source, mountpoint], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
  try {
    const mounted = new Promise<boolean>((resolve) => server.stdout!.once('data', () => resolve(true)));
    if (!(await Promise.race([mounted, exited.then(() => false)]))) throw new Error(`the ${floor} floor did not mount ${mountpoint}`);
    return await work();
  } finally {
    await exec('umount', [mountpoint]).catch(() => exec('umount', ['-l', mountpoint]).catch(() => undefined));
    server.kill('SIGTERM');
    await exited;
    if (uringWas !== undefined) await writeFile(URING_SWITCH, uringWas);
  }
}

function present(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

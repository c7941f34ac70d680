import { execFile, spawn } from 'node:child_process';
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);
const SOURCE = join(__dirname, '..', '..', 'bench', 'floor', 'cFloor.c');
const BINARY = join(__dirname, 'c-floor-server');

/** Compiles the C floor server (bench/floor/cFloor.c) once, installing libfuse 3's headers if missing. */
export async function buildCFloor(): Promise<void> {
  const hasHeaders = await access('/usr/include/fuse3/fuse_lowlevel.h').then(() => true, () => false);
  if (!hasHeaders) await exec('apt-get', ['install', '-y', '-qq', 'libfuse3-dev'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  await exec(process.env.CC ?? 'cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-I/usr/include/fuse3', '-o', BINARY, SOURCE, '-lfuse3', '-lpthread']);
}

/** Serves `source` at `mountpoint` with the C floor for as long as `work` runs, then unmounts it. */
export async function withCFloor<T>(source: string, mountpoint: string, work: () => Promise<T>): Promise<T> {
  await mkdir(mountpoint, { recursive: true });
  const server = spawn(BINARY, [source, mountpoint], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
  try {
    const mounted = new Promise<boolean>((resolve) => server.stdout!.once('data', () => resolve(true)));
    if (!(await Promise.race([mounted, exited.then(() => false)]))) throw new Error(`the C floor did not mount ${mountpoint}`);
    return await work();
  } finally {
    await exec('umount', [mountpoint]).catch(() => exec('umount', ['-l', mountpoint]).catch(() => undefined));
    server.kill('SIGTERM');
    await exited;
  }
}

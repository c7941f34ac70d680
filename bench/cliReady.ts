import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const MAIN = resolve(__dirname, '../src/cli/main.js');

/**
 * What a person waits for: `gitfs-csi mount` from process start until it prints its ready line
 * (the tree listable), in ms; then Ctrl-C, and its end awaited. Stores and cache in `dir` (fresh).
 */
export async function cliMountReady(url: string, dir: string): Promise<number> {
  const mountpoint = join(dir, 'mnt');
  await mkdir(mountpoint, { recursive: true });
  const started = performance.now();
  const child = spawn(process.execPath, [MAIN, 'mount', url, mountpoint, '--cache-dir', join(dir, 'cache'), '--state-dir', join(dir, 'state'), '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((done) => child.once('close', done));
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
  const readyMs = await new Promise<number>((done, fail) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk;
      if (/^ready /m.test(stdout)) done(performance.now() - started);
    });
    void exited.then((code) => fail(new Error(`gitfs-csi mount exited ${code} before ready: ${stderr.slice(0, 500)}`)));
  });
  child.kill('SIGINT');
  await exited;
  return readyMs;
}

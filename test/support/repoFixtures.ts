import { detachAll, readMountTable } from '../../src/mount/mountTable';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export type FixtureEntry =
  | { path: string; content: Buffer | string; mode?: '100644' | '100755' }
  | { path: string; symlink: string }
  | { path: string; gitlink: string }
  /** Content produced by a generator, streamed, never held whole (large files). */
  | { path: string; size: number; byte: number };

export async function git(args: string[], options: { cwd?: string; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const child = execFile('git', args, { cwd: options.cwd, env: { ...process.env, ...options.env }, maxBuffer: 256 * 1024 * 1024 });
  if (options.input !== undefined) child.stdin!.end(options.input);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (c) => (out += c));
    child.stderr!.on('data', (c) => (err += c));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`git ${args.join(' ')}: ${err}`))));
  });
}

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `gitfs-${prefix}-`));
}

/** Removes a test directory, first detaching anything still mounted under it (deepest first). */
export async function removeDir(dir: string): Promise<void> {
  const mounted = (await readMountTable()).map((m) => m.mountPoint).filter((p) => p.startsWith(`${dir}/`));
  for (const mountPoint of mounted.sort((a, b) => b.length - a.length)) await detachAll(mountPoint);
  await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
}

/**
 * Creates (or adds a commit to) a bare repository served by the test server, with exactly
 * `entries`, using git fast-import so thousands of files take a fraction of a second.
 * Returns the new commit id.
 */
export async function commitTree(bareDir: string, entries: FixtureEntry[], options: { branch?: string; message?: string; objectFormat?: 'sha1' | 'sha256' } = {}): Promise<string> {
  await mkdir(bareDir, { recursive: true });
  const exists = await exec('git', ['--git-dir', bareDir, 'rev-parse', '--git-dir']).then(() => true, () => false);
  if (!exists) {
    await exec('git', ['init', '--bare', '-q', `--object-format=${options.objectFormat ?? 'sha1'}`, bareDir]);
    await serveConfig(bareDir);
  }
  const branch = options.branch ?? 'main';
  const child = spawn('git', ['--git-dir', bareDir, 'fast-import', '--quiet', '--done'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const done = new Promise<void>((resolve, reject) => child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`fast-import: ${stderr}`)))));
  const write = (data: string | Buffer) => new Promise<void>((resolve) => (child.stdin.write(data) ? resolve() : child.stdin.once('drain', resolve)));

  const message = options.message ?? 'fixture';
  const parent = await exec('git', ['--git-dir', bareDir, 'rev-parse', '--verify', '-q', `refs/heads/${branch}`]).then((r) => r.stdout.trim(), () => '');
  await write(`commit refs/heads/${branch}\ncommitter Fixture <fixture@example.invalid> 1700000000 +0000\ndata ${Buffer.byteLength(message)}\n${message}\n`);
  if (parent) await write(`from ${parent}\n`);
  await write('deleteall\n');
  for (const entry of entries) {
    const path = quotePath(entry.path);
    if ('gitlink' in entry) {
      await write(`M 160000 ${entry.gitlink} ${path}\n`);
    } else if ('symlink' in entry) {
      await write(`M 120000 inline ${path}\ndata ${Buffer.byteLength(entry.symlink)}\n${entry.symlink}\n`);
    } else if ('size' in entry) {
      await write(`M 100644 inline ${path}\ndata ${entry.size}\n`);
      const block = Buffer.alloc(1024 * 1024, entry.byte);
      for (let left = entry.size; left > 0; left -= block.length) await write(left >= block.length ? block : block.subarray(0, left));
      await write('\n');
    } else {
      const content = typeof entry.content === 'string' ? Buffer.from(entry.content) : entry.content;
      await write(`M ${entry.mode ?? '100644'} inline ${path}\ndata ${content.length}\n`);
      await write(content);
      await write('\n');
    }
  }
  await write('done\n');
  child.stdin.end();
  await done;
  if (!exists) await exec('git', ['--git-dir', bareDir, 'symbolic-ref', 'HEAD', `refs/heads/${branch}`]);
  return (await exec('git', ['--git-dir', bareDir, 'rev-parse', `refs/heads/${branch}`])).stdout.trim();
}

/**
 * Two commits of a generated tree, the second editing every fourth text file of the first, so a
 * pack of both holds deltas of blobs (and of trees).
 */
export async function commitSimilarPair(bareDir: string, fileCount: number, seed: number): Promise<void> {
  const first = generatedTree(fileCount, seed);
  await commitTree(bareDir, first);
  await commitTree(bareDir, first.map((e, i) => ('content' in e && typeof e.content === 'string' && i % 4 === 0 ? { ...e, content: `${e.content}edited\n` } : e)));
}

/** Every object stored in `bareDir`, as `cat-file --batch-all-objects` lists them. */
export async function storedObjects(bareDir: string): Promise<Array<{ oid: string; type: string; size: number }>> {
  const listing = await git(['--git-dir', bareDir, 'cat-file', '--batch-all-objects', '--batch-check=%(objectname) %(objecttype) %(objectsize)']);
  return listing.trim().split('\n').map((line) => {
    const [oid, type, size] = line.split(' ');
    return { oid, type, size: Number(size) };
  });
}

/** Every object of every branch of `bareDir` in one pack, as pack-objects writes it (deltas and all). */
export function packOfAll(bareDir: string, args: string[] = []): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile('git', ['--git-dir', bareDir, 'pack-objects', '--stdout', '--revs', '--all', ...args], { encoding: 'buffer', maxBuffer: 1 << 28 }, (err, out) => (err ? reject(err) : resolve(out)));
    child.stdin!.end();
  });
}

/** What a server needs for partial clones, fetch by id, and object-info (newer git advertises it only when asked). */
export async function serveConfig(bareDir: string): Promise<void> {
  for (const [key, value] of [
    ['uploadpack.allowFilter', 'true'],
    ['uploadpack.allowAnySHA1InWant', 'true'],
    ['transfer.advertiseObjectInfo', 'true'],
    ['http.receivepack', 'false'],
  ]) {
    await exec('git', ['--git-dir', bareDir, 'config', key, value]);
  }
}

function quotePath(path: string): string {
  if (!/["\\\n]/.test(path) && !path.startsWith('"')) return path;
  return `"${path.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

/** A generated tree: nested directories, many small files, exec bits, symlinks, empty files, a gitlink. */
export function generatedTree(fileCount: number, seed = 1): FixtureEntry[] {
  let state = seed;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const entries: FixtureEntry[] = [];
  for (let i = 0; i < fileCount; i++) {
    const dir = `src/mod${i % 23}/pkg${i % 7}${i % 3 === 0 ? '/deep/er' : ''}`;
    const lines = 1 + Math.floor(random() * 60);
    const content = Array.from({ length: lines }, (_, l) => `line ${l} of file ${i} ${random().toString(36)}\n`).join('');
    entries.push({ path: `${dir}/file${i}.${i % 5 === 0 ? 'go' : 'txt'}`, content, mode: i % 17 === 0 ? '100755' : '100644' });
  }
  entries.push(
    { path: 'README.md', content: '# generated fixture\n' },
    { path: 'package.json', content: '{"name":"fixture"}\n' },
    { path: 'empty.txt', content: '' },
    { path: 'src/empty-too', content: '' },
    { path: 'bin/run.sh', content: '#!/bin/sh\necho run\n', mode: '100755' },
    { path: 'links/to-readme', symlink: '../README.md' },
    { path: 'links/dangling', symlink: 'does/not/exist' },
    { path: 'vendor/submodule', gitlink: '0123456789abcdef0123456789abcdef01234567' },
    { path: 'names/with space.txt', content: 'spaces\n' },
    { path: 'names/ünïcødé-文件.txt', content: 'unicode\n' },
    { path: 'names/-leading-dash.txt', content: 'dash\n' },
    { path: 'assets/large.bin', content: Buffer.alloc(3 * 1024 * 1024 + 17, 7) },
  );
  return entries;
}

import { execFile } from 'node:child_process';
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { commitTree, FixtureEntry, serveConfig } from '../test/support/repoFixtures';

const exec = promisify(execFile);

export interface Corpus {
  name: string;
  bareDir: string;
}

/** ≥ 20k files of mixed sizes: many small sources, some medium files, a few large ones. */
export async function generatedCorpus(servedDir: string, files = 20_000): Promise<Corpus> {
  let state = 7;
  const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const entries: FixtureEntry[] = [];
  for (let i = 0; i < files; i++) {
    const roll = random();
    const size = roll < 0.9 ? 200 + Math.floor(random() * 12_000) : roll < 0.997 ? 50_000 + Math.floor(random() * 200_000) : 2_000_000 + Math.floor(random() * 8_000_000);
    // Compressible but distinct content, like source and data files.
    const line = `${i} ${random().toString(36)} ${'x'.repeat(40)}\n`;
    const content = Buffer.from(line.repeat(Math.ceil(size / line.length)).slice(0, size));
    entries.push({ path: `pkg${i % 40}/mod${i % 13}/dir${i % 5}/file${i}.${roll < 0.997 ? 'txt' : 'bin'}`, content, mode: i % 29 === 0 ? '100755' : '100644' });
  }
  const bareDir = join(servedDir, 'generated.git');
  await commitTree(bareDir, entries);
  return { name: 'generated', bareDir };
}

/**
 * A real source tree from a Debian package, Go's standard library (golang-1.19-src), served two
 * ways: from loose objects, which makes the server compress every object on each full fetch, and
 * as a server holds it after a push.
 */
export async function debianCorpora(servedDir: string): Promise<Corpus[]> {
  const source = '/usr/share/go-1.19/src';
  const present = await access(source).then(() => true, () => false);
  if (!present) {
    await exec('apt-get', ['install', '-y', '-qq', 'golang-1.19-src'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).catch(() => undefined);
    if (!(await access(source).then(() => true, () => false))) return [];
  }
  const work = join(servedDir, '..', 'go-src-work');
  await mkdir(work, { recursive: true });
  const git = (args: string[]) => exec('git', ['--git-dir', join(work, '.git'), '--work-tree', source, ...args], { maxBuffer: 1 << 28 });
  await exec('git', ['init', '-q', work]);
  await git(['add', '-A', '.']);
  await git(['-c', 'user.name=bench', '-c', 'user.email=bench@localhost', 'commit', '-q', '-m', 'golang-1.19-src']);
  const looseDir = join(servedDir, 'go-src.git');
  await exec('git', ['clone', '-q', '--bare', join(work, '.git'), looseDir]);
  await serveConfig(looseDir);
  // The same commit as a server holds it after a push: receive-pack keeps a pushed pack of over
  // 100 objects as it came, so the server sends stored deltas instead of computing them.
  const pushedDir = join(servedDir, 'go-src-pushed.git');
  await exec('git', ['init', '-q', '--bare', pushedDir]);
  await git(['push', '-q', pushedDir, 'HEAD:refs/heads/master']);
  await exec('git', ['--git-dir', pushedDir, 'symbolic-ref', 'HEAD', 'refs/heads/master']);
  await serveConfig(pushedDir);
  return [
    { name: 'golang-1.19-src, loose objects', bareDir: looseDir },
    { name: 'golang-1.19-src, as pushed', bareDir: pushedDir },
  ];
}

/**
 * `node corpora.js <servedDir>`: builds the corpora and prints them as JSON. The benchmark runs this
 * in a child process, so the 700 MB of generated content is never part of the measuring process.
 */
if (require.main === module) {
  void (async () => {
    const servedDir = process.argv[2];
    const corpora = [await generatedCorpus(servedDir), ...(await debianCorpora(servedDir))];
    process.stdout.write(JSON.stringify(corpora));
  })();
}

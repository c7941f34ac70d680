import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runGit } from './gitProcess';

/** Under the store's git directory: one directory per commit, made once and then only read. */
const HISTORY_DIR = 'gitfs-history';
const MANIFEST = 'history.json';
const BLOBS = 'blobs';

/** The commits and trees one commit reaches in a store, as a pack a volume's `.git` serves. */
export interface HistoryPack {
  /** `pack-<checksum>`: the pack is `<name>.pack` and its index `<name>.idx` under `dir`. */
  name: string;
  dir: string;
  /** Commits of this history whose parents the store does not have (a volume's `.git/shallow`). */
  shallow: string[];
  /**
   * Every blob id the history reaches, sorted, one per line, when it reaches more than the
   * commit's own tree does (undefined when the commit is the history's only commit).
   */
  blobsFile?: string;
}

/**
 * The history pack of `commit` in the store at `gitDir`: every commit and tree it reaches there
 * (within the store's shallow boundary), and no blob. Made on first use and kept beside the store,
 * so a restarted node plugin serves the same files under the same names; the store itself is never
 * shown, so nothing another commit brought into it reaches a volume.
 */
export async function historyPack(gitDir: string, commit: string, timeoutMs: number): Promise<HistoryPack> {
  const dir = join(gitDir, HISTORY_DIR, commit);
  const made = await readManifest(dir);
  if (made) return made;
  const tmp = `${dir}.${randomBytes(6).toString('hex')}.tmp`;
  await mkdir(tmp, { recursive: true });
  try {
    const { stdout: pack } = await runGit({ args: ['pack-objects', '--revs', '--stdout', '--quiet', '--filter=blob:none'], gitDir, input: `${commit}\n`, timeoutMs });
    const { stdout: indexed } = await runGit({ args: ['index-pack', '--stdin', '-o', join(tmp, 'pack.idx'), join(tmp, 'pack.pack')], gitDir, input: pack, timeoutMs });
    const name = `pack-${indexed.toString('latin1').trim().split(/\s+/).pop()}`;
    await rename(join(tmp, 'pack.pack'), join(tmp, `${name}.pack`));
    await rename(join(tmp, 'pack.idx'), join(tmp, `${name}.idx`));
    const shallow = await shallowCommitsOf(gitDir, commit, timeoutMs);
    const deep = !shallow.includes(commit);
    if (deep) await writeFile(join(tmp, BLOBS), await historyBlobsOf(gitDir, commit, timeoutMs));
    await writeFile(join(tmp, MANIFEST), JSON.stringify({ name, shallow, deep }));
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      // Made meanwhile by another process serving the same commit: theirs is the same history.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  const manifest = await readManifest(dir);
  if (!manifest) throw new Error(`history pack of ${commit} missing after it was made in ${dir}`);
  return manifest;
}

async function readManifest(dir: string): Promise<HistoryPack | undefined> {
  const text = await readFile(join(dir, MANIFEST), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const { name, shallow, deep } = JSON.parse(text) as { name: string; shallow: string[]; deep: boolean };
  return { name, dir, shallow, ...(deep ? { blobsFile: join(dir, BLOBS) } : {}) };
}

/** The store's shallow commits that this history reaches: where it stops. */
async function shallowCommitsOf(gitDir: string, commit: string, timeoutMs: number): Promise<string[]> {
  const boundary = new Set((await readFile(join(gitDir, 'shallow'), 'utf8').catch(() => '')).split('\n').filter(Boolean));
  if (boundary.size === 0) return [];
  const { stdout } = await runGit({ args: ['rev-list', commit], gitDir, timeoutMs });
  return stdout.toString('latin1').split('\n').filter((oid) => boundary.has(oid)).sort();
}

/** Every blob the history reaches (whether the store holds it or not), sorted, one id per line. */
async function historyBlobsOf(gitDir: string, commit: string, timeoutMs: number): Promise<string> {
  const { stdout } = await runGit({ args: ['rev-list', '--objects', '--no-object-names', '--filter=blob:none', '--filter-print-omitted', commit], gitDir, timeoutMs });
  const blobs = stdout.toString('latin1').split('\n').filter((line) => line.startsWith('~')).map((line) => line.slice(1));
  return blobs.sort().join('\n') + '\n';
}

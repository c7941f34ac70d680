import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/**
 * What `git fetch` records once a pack is stored, for fetches made with our own client: the
 * ref that keeps the commit, and the commits the server cut history at (the `shallow` file,
 * without which git would take the store's history to be whole). Both are replaced by rename,
 * so a reader never sees half a file. The store serializes its commit fetches, so no two
 * writers meet here.
 */
export async function recordFetch(gitDir: string, ref: string, commit: string, shallow: string[]): Promise<void> {
  if (shallow.length > 0) {
    const file = join(gitDir, 'shallow');
    const existing = await readFile(file, 'utf8').catch(() => '');
    const commits = new Set([...existing.split('\n').filter(Boolean), ...shallow]);
    await replaceFile(file, [...commits].sort().join('\n') + '\n');
  }
  const refFile = join(gitDir, ref);
  await mkdir(dirname(refFile), { recursive: true });
  await replaceFile(refFile, `${commit}\n`);
}

async function replaceFile(file: string, content: string): Promise<void> {
  const tmp = `${file}.gitfs-${process.pid}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, file);
}

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Lays out an empty bare repository directly: what `git init --bare` writes, minus the
 * template's sample hooks. It spares a git process on the path of a node's first volume of a
 * remote, where it cost as much as a tenth of the wait. HEAD is written last: git (and
 * RepositoryStore) take its presence to mean a repository is there, so an interrupted layout
 * is simply laid out again.
 */
export async function createBareRepository(gitDir: string, objectFormat: 'sha1' | 'sha256'): Promise<void> {
  for (const dir of ['objects/info', 'objects/pack', 'refs/heads', 'refs/tags']) await mkdir(join(gitDir, dir), { recursive: true });
  // SHA-256 repositories need format version 1, which is what makes git read the extension.
  const config = objectFormat === 'sha1'
    ? '[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n'
    : '[core]\n\trepositoryformatversion = 1\n\tfilemode = true\n\tbare = true\n[extensions]\n\tobjectformat = sha256\n';
  await writeFile(join(gitDir, 'config'), config);
  await writeFile(join(gitDir, 'HEAD'), 'ref: refs/heads/main\n');
}

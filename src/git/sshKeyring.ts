import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A volume's own SSH identity, from its secret. */
export interface SshIdentity {
  privateKey: string;
  /** Host keys to trust; without them the node's own known_hosts decide. */
  knownHosts?: string;
}

/** Where ssh finds an identity: files readable by this process only. */
export interface SshKeyFiles {
  keyFile: string;
  knownHostsFile?: string;
}

/**
 * ssh reads keys only from files, so a volume's key is written — once per distinct key — into a
 * 0700 directory that lives in memory (tmpfs) for as long as this process, and nowhere else.
 */
export class SshKeyring {
  private readonly written = new Map<string, Promise<SshKeyFiles>>();

  constructor(readonly dir: string) {}

  files(identity: SshIdentity): Promise<SshKeyFiles> {
    const digest = createHash('sha256').update(identity.privateKey).update('\0').update(identity.knownHosts ?? '').digest('hex').slice(0, 32);
    let files = this.written.get(digest);
    if (!files) {
      files = this.write(join(this.dir, digest), identity);
      this.written.set(digest, files);
      files.catch(() => this.written.delete(digest));
    }
    return files;
  }

  async clear(): Promise<void> {
    this.written.clear();
    await rm(this.dir, { recursive: true, force: true });
  }

  private async write(dir: string, identity: SshIdentity): Promise<SshKeyFiles> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const keyFile = join(dir, 'id');
    // ssh refuses a key without its final newline.
    await writeFile(keyFile, identity.privateKey.endsWith('\n') ? identity.privateKey : `${identity.privateKey}\n`, { mode: 0o600 });
    if (identity.knownHosts === undefined) return { keyFile };
    const knownHostsFile = join(dir, 'known_hosts');
    await writeFile(knownHostsFile, identity.knownHosts, { mode: 0o600 });
    return { keyFile, knownHostsFile };
  }
}

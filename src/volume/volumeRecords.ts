import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PodInfo } from './volumeSpec';

/** What survives a restart about one published volume. Never a secret. */
export interface VolumeRecord {
  volumeId: string;
  target: string;
  /** Digest of the publish arguments: same target + same digest is the same publish. */
  fingerprint: string;
  /** The repository URL as git is given it (no userinfo). */
  repository: string;
  refName: string;
  commit: string;
  /** The annotated tag object `refName` names, if it is one. */
  tag?: string;
  depth?: number;
  pod: PodInfo;
  /** Present for a writable volume: its layer's size. */
  writeLimitBytes?: number;
  /** false for a volume without `.git` (absent: it has one). */
  git?: false;
}

/**
 * Published volumes, one small JSON file per target under the state directory, written
 * atomically, so publish and unpublish stay idempotent across node plugin restarts.
 */
export class VolumeRecords {
  private readonly records = new Map<string, VolumeRecord>();

  private constructor(private readonly dir: string) {}

  static async open(dir: string): Promise<VolumeRecords> {
    await mkdir(dir, { recursive: true });
    const records = new VolumeRecords(dir);
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.json')) {
        if (name.includes('.tmp')) await rm(join(dir, name), { force: true });
        continue;
      }
      try {
        const record = JSON.parse(await readFile(join(dir, name), 'utf8')) as VolumeRecord;
        records.records.set(record.target, record);
      } catch {
        // A record that cannot be read cannot be honoured; kubelet's next call rebuilds it.
        await rm(join(dir, name), { force: true });
      }
    }
    return records;
  }

  get(target: string): VolumeRecord | undefined {
    return this.records.get(target);
  }

  all(): VolumeRecord[] {
    return [...this.records.values()];
  }

  async put(record: VolumeRecord): Promise<void> {
    const file = this.fileOf(record.target);
    await writeFile(`${file}.tmp`, JSON.stringify(record), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
    this.records.set(record.target, record);
  }

  async delete(target: string): Promise<void> {
    await rm(this.fileOf(target), { force: true });
    this.records.delete(target);
  }

  private fileOf(target: string): string {
    return join(this.dir, `${createHash('sha256').update(target).digest('hex').slice(0, 32)}.json`);
  }
}

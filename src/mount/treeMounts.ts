import { TreeMount } from './treeMount';

interface Entry {
  mount: Promise<TreeMount>;
  refs: number;
  releaseTimer?: NodeJS.Timeout;
}

/**
 * The node's tree mounts: one per (repository, commit), reference-counted by the consumers
 * that bind it. An idle mount is released after a grace period, so a pod restarting on the
 * same commit finds it still warm.
 */
export class TreeMounts {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly graceMs: number) {}

  /** The mount for `key`, created and mounted by `create` the first time; adds a reference. */
  async acquire(key: string, create: () => TreeMount): Promise<TreeMount> {
    let entry = this.entries.get(key);
    if (!entry) {
      const mount = create();
      entry = { mount: mount.mount().then(() => mount), refs: 0 };
      this.entries.set(key, entry);
      const created = entry;
      created.mount.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
    }
    clearTimeout(entry.releaseTimer);
    entry.releaseTimer = undefined;
    entry.refs++;
    try {
      return await entry.mount;
    } catch (err) {
      entry.refs--;
      throw err;
    }
  }

  /** Drops a reference; the last one schedules the unmount (and, without a grace period, waits for it). */
  async release(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (!entry || entry.refs === 0) return;
    entry.refs--;
    if (entry.refs > 0) return;
    const unmount = async () => {
      if (this.entries.get(key) !== entry || entry.refs > 0) return;
      this.entries.delete(key);
      await (await entry.mount).unmount();
    };
    if (this.graceMs <= 0) await unmount();
    else entry.releaseTimer = setTimeout(() => void unmount(), this.graceMs);
  }

  /**
   * Unmounts everything now (shutdown); with `handOver`, leaves each mount to the holder for the
   * next process instead, once the requests it took are answered (within `drainMs`).
   */
  async closeAll(options: { handOver?: boolean; drainMs?: number } = {}): Promise<void> {
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(
      entries.map(async (e) => {
        clearTimeout(e.releaseTimer);
        const mount = await e.mount.catch(() => undefined);
        await (options.handOver ? mount?.handOver(options.drainMs ?? 10_000) : mount?.unmount());
      }),
    );
  }
}

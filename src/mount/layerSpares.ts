import { access, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemCommand } from './systemCommand';

/**
 * Formatted layer images kept ready, one per write limit in use, so that a writable publish
 * renames one into place instead of formatting its own: `mkfs.ext4` is the step that would
 * otherwise add to the volume's time to ready. A spare is sparse (only ext4's metadata is
 * written); the publish that takes it allocates its space. After each take or format the next
 * spare of that size is made in the background.
 */
export class LayerSpares {
  private readonly making = new Map<number, Promise<void>>();
  private made = 0;
  private closed = false;

  constructor(private readonly dir: string) {}

  /** Moves a ready spare of `limitBytes` to `image`; false when there is none (or another publish took it). */
  async take(limitBytes: number, image: string): Promise<boolean> {
    return rename(this.spareOf(limitBytes), image).then(() => true, () => false);
  }

  /** Starts making the spare of `limitBytes` unless one is ready or being made. */
  replenish(limitBytes: number): void {
    if (this.closed || this.making.has(limitBytes)) return;
    const work = this.make(limitBytes).catch(() => undefined).finally(() => this.making.delete(limitBytes));
    this.making.set(limitBytes, work);
  }

  /** Waits for spares being made: no mkfs outlives the process that started it. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.making.values());
  }

  private spareOf(limitBytes: number): string {
    return join(this.dir, `${limitBytes}.img`);
  }

  private async make(limitBytes: number): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const spare = this.spareOf(limitBytes);
    if (await access(spare).then(() => true, () => false)) return;
    const partial = `${spare}.partial-${process.pid}-${++this.made}`;
    try {
      // At the lowest priority: a spare is made while the publish that took the last one still runs.
      await formatImage(partial, limitBytes, { background: true });
      await rename(partial, spare);
    } finally {
      await rm(partial, { force: true });
    }
  }
}

/** Formats a new, sparse ext4 image of `limitBytes` at `image` (`background`: at the lowest CPU priority). */
export async function formatImage(image: string, limitBytes: number, options: { background: boolean } = { background: false }): Promise<void> {
  await writeFile(image, '', { flag: 'wx', mode: 0o600 });
  // No journal: a layer does not outlive a reboot of its node. One inode per 8 KiB: checkouts hold many small files.
  const [command, ...args] = [...(options.background ? ['nice', '-n', '19'] : []), 'mkfs.ext4', '-q', '-F', '-O', '^has_journal', '-b', '4096', '-m', '0', '-i', '8192', '-E', 'nodiscard,lazy_itable_init=1', image, `${Math.floor(limitBytes / 1024)}k`];
  await systemCommand(command, args);
}

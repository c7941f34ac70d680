import { HydrationStats } from '../hydrate/hydrator';
import { formatBytes } from '../config/byteSize';

/**
 * One status line on stderr that rewrites itself, for a person at a terminal. When stderr
 * is not a TTY it stays quiet: the JSON logs carry the same facts for machines.
 */
export class ProgressLine {
  private last = '';

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  get enabled(): boolean {
    return this.stream.isTTY === true;
  }

  /** A line that stays (a phase change). */
  say(text: string): void {
    if (!this.enabled) return;
    this.clear();
    this.stream.write(`${text}\n`);
    this.redraw();
  }

  update(stats: HydrationStats, cacheBytes: number): void {
    this.last = `hydrated ${stats.blobsHydrated} blobs (${formatBytes(stats.bytesHydrated)}) in ${stats.fetchBatches} fetches · ${stats.queued} queued · ${stats.inFlight} in flight · cache ${formatBytes(cacheBytes)}`;
    this.redraw();
  }

  finish(): void {
    if (this.enabled && this.last) this.stream.write('\n');
    this.last = '';
  }

  private clear(): void {
    if (this.last) this.stream.write('\r\x1b[2K');
  }

  private redraw(): void {
    if (!this.enabled || !this.last) return;
    this.stream.write(`\r\x1b[2K${this.last}`);
  }
}

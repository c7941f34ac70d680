import { BlobTooLarge } from '../errors/errors';
import { BlobSource, Priority } from '../hydrate/blobSource';
import { Hydrator } from '../hydrate/hydrator';
import { TreeIndex, UNKNOWN_SIZE } from '../tree/treeIndex';

/** The most blobs one request asks the size of. */
const MAX_ASKED = 1000;

/** The largest blob a lookup fetches for its size: a read costs no more than a request. */
const LOOKUP_FETCH_BYTES = 1024 * 1024;

interface Round {
  /** Object id → the entries that take its size. */
  wanted: Map<string, number[]>;
  /** The entries a request is waiting for (the others came along as their neighbours). */
  needed: Set<number>;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Sizes of single entries, asked for before the tree's sizes are all known (a file looked up right
 * after ready), so that a lookup never waits for the whole tree. An entry is asked for with its
 * directory's other files (whoever stats one stats its neighbours next); the entries asked for
 * while a request is out go together in the next, and so do a directory listing's. A source that
 * cannot tell sizes alone (a server without object-info) fetches the needed blobs instead: their
 * contents carry their sizes.
 */
export class EntrySizes {
  private next: Round | undefined;
  private asking = false;
  /** A lookup's fetch that stands in for a size request is out. */
  private fetchingAlone = false;

  constructor(
    readonly index: TreeIndex,
    private readonly source: BlobSource,
    private readonly hydrator: Hydrator,
  ) {}

  /**
   * Resolves once `entry`'s size is in the index. An entry looked up on its own (nothing else is
   * being asked: not a walk) is fetched instead if it is small: a read of it usually follows, and
   * its content, or the header of a larger one's, carries its size. One request, not a size request
   * beside the fetch, while the server is also answering the tree's sizes. Lookups meanwhile are
   * asked for with their neighbours, as in a walk.
   */
  learn(entry: number, lookedUp = false): Promise<void> {
    if (lookedUp && !this.asking && !this.fetchingAlone) {
      this.fetchingAlone = true;
      const fetched = this.fetchedIfSmall(entry).finally(() => (this.fetchingAlone = false));
      return fetched.catch(() => this.learn(entry));
    }
    const round = (this.next ??= newRound());
    round.needed.add(entry);
    add(round, this.index, entry);
    for (const sibling of this.index.childrenOf(this.index.parents[entry])) {
      if (round.wanted.size >= MAX_ASKED) break;
      if (this.unsized(sibling)) add(round, this.index, sibling);
    }
    this.askSoon();
    return round.done;
  }

  /** Resolves once the sizes of entries [start, end) (a directory's listing) are asked; never fetches their contents. */
  learnListed({ start, end }: { start: number; end: number }): Promise<void> {
    const round = (this.next ??= newRound());
    for (let entry = start; entry < end; entry++) if (this.unsized(entry)) add(round, this.index, entry);
    this.askSoon();
    return round.done;
  }

  /** Only blobs are ever of unknown size. */
  private unsized(entry: number): boolean {
    return this.index.size(entry) === UNKNOWN_SIZE;
  }

  private askSoon(): void {
    if (!this.asking) void this.askAll();
  }

  private async askAll(): Promise<void> {
    this.asking = true;
    while (this.next) {
      const round = this.next;
      this.next = undefined;
      await this.ask(round).then(round.resolve, round.reject);
    }
    this.asking = false;
  }

  private async ask(round: Round): Promise<void> {
    const sizes = await this.source.sizesOf?.([...round.wanted.keys()]).catch(() => undefined);
    if (sizes) {
      for (const [oid, size] of sizes) for (const entry of round.wanted.get(oid) ?? []) this.index.setSize(entry, size);
    }
    const unknown = [...round.needed].filter((entry) => this.unsized(entry));
    await Promise.all(unknown.map((entry) => this.fetched(entry)));
  }

  private async fetchedIfSmall(entry: number): Promise<void> {
    const oid = this.index.oid(entry);
    try {
      await this.hydrator.hydrateIfSmall(this.source, oid, LOOKUP_FETCH_BYTES);
    } catch (err) {
      if (!(err instanceof BlobTooLarge)) throw err;
      this.index.setSize(entry, err.size);
      return;
    }
    this.takeCachedSize(entry, oid);
  }

  /** Fetches the entry's blob and takes its size from the cache. */
  private async fetched(entry: number): Promise<void> {
    const oid = this.index.oid(entry);
    await this.hydrator.hydrate(this.source, oid, Priority.Read);
    this.takeCachedSize(entry, oid);
  }

  private takeCachedSize(entry: number, oid: string): void {
    const size = this.hydrator.cache.sizeOf(oid);
    if (size === undefined) throw new Error(`the size of blob ${oid} is unknown after fetching it`);
    this.index.setSize(entry, size);
  }
}

function newRound(): Round {
  const round = { wanted: new Map(), needed: new Set() } as Partial<Round>;
  round.done = new Promise<void>((resolve, reject) => Object.assign(round, { resolve, reject }));
  round.done.catch(() => undefined);
  return round as Round;
}

function add(round: Round, index: TreeIndex, entry: number): void {
  const oid = index.oid(entry);
  const entries = round.wanted.get(oid);
  if (!entries) round.wanted.set(oid, [entry]);
  else if (!entries.includes(entry)) entries.push(entry);
}

/** Where the hydrator gets blobs from: one repository store reached with one set of credentials. */
export interface BlobSource {
  /** Requests with equal keys may share a fetch. */
  readonly key: string;
  /**
   * The blobs in one round trip: handed to `receiver` as they arrive when there is one and the
   * source can stream, or brought into local storage for `extract`.
   */
  fetch(oids: string[], receiver?: BlobReceiver): Promise<void>;
  /**
   * Every blob of the tree in one transfer: each handed to `receiver` as it arrives, or (where
   * the source cannot stream them) brought into local storage, for `extract` afterwards.
   */
  fetchEverything(receiver: BlobReceiver): Promise<void>;
  /** The blobs' sizes without their contents, or undefined where the source cannot tell them alone. */
  sizesOf?(oids: string[]): Promise<Map<string, number> | undefined>;
  /** Streams a locally stored blob; rejects with ObjectMissing when it is not local. */
  extract(oid: string, sink: { start(size: number): void; data(chunk: Buffer): void | Promise<void> }): Promise<number>;
}

/** Explicit reads first, then manifests, source, binaries. Lower is more urgent. */
export const enum Priority {
  Read = 0,
  Manifest = 1,
  Source = 2,
  Binary = 3,
  Background = 4,
}

export const PRIORITY_LEVELS = 5;

/** Takes the blobs of a transfer as they arrive (the hydrator: into the cache). */
export interface BlobReceiver {
  /** One blob, its id already computed from its content. */
  deliver(oid: string, content: Buffer): Promise<void>;
  /** One blob the transfer wrote into the cache itself (from another thread) and registered there. */
  stored(oid: string, size: number): void;
  /** A blob delivered earlier, read back (a later delta may be based on it). */
  readBack(oid: string): Promise<Buffer>;
  /** The largest blob it takes whole: a larger one ends the transfer with BlobTooLarge, its size said. */
  readonly largest: number;
}

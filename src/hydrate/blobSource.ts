/** Where the hydrator gets blobs from: one repository store reached with one set of credentials. */
export interface BlobSource {
  /** Requests with equal keys may share a fetch. */
  readonly key: string;
  /** Brings the blobs into local storage in one round trip. */
  fetch(oids: string[]): Promise<void>;
  /** Brings every blob of the tree into local storage in one transfer. */
  fetchEverything(): Promise<void>;
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

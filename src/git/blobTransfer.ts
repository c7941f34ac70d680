import { PackParser } from './packParser';
import { UploadPackClient } from './uploadPackClient';

/** Where the blobs of a whole-commit transfer go, and how one comes back as a delta's base. */
export interface BlobReceiver {
  /** Takes one blob of the transfer, its id already computed from its content. */
  deliver(oid: string, content: Buffer): Promise<void>;
  /** A blob delivered earlier, read back. */
  readBack(oid: string): Promise<Buffer>;
}

export interface BlobTransferLimits {
  /** Larger blobs are left out of the transfer (the server filters them), to be fetched by id and streamed. */
  maxBlobBytes: number;
  /** Blob content held for deltas; older bases are read back from the receiver. */
  baseBytes: number;
  /** Deliveries (cache writes) in flight at once. */
  deliveries: number;
}

export const DEFAULT_BLOB_TRANSFER: BlobTransferLimits = { maxBlobBytes: 64 * 1024 * 1024, baseBytes: 64 * 1024 * 1024, deliveries: 32 };

/**
 * Fetches every blob of one commit in a single transfer, as a clone would (the server reuses
 * its deltas, which it cannot for a list of ids), and delivers each as soon as it is parsed out
 * of the stream: a reader waiting for one file gets it while the rest is still arriving, and
 * writing the files overlaps the transfer instead of following it. Nothing goes into the store.
 */
export async function receiveCommitBlobs(client: UploadPackClient, commit: string, receiver: BlobReceiver, limits = DEFAULT_BLOB_TRANSFER): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  const delivered = new Map<string, Promise<void>>();
  let failure: unknown;
  const parser = new PackParser({
    objectFormat: await client.objectFormat(),
    blobBaseBudget: limits.baseBytes,
    loadBlob: async (oid) => {
      await delivered.get(oid);
      return receiver.readBack(oid);
    },
    onObject: async (object) => {
      if (failure) throw failure;
      if (object.kind !== 'blob') return;
      const delivery: Promise<void> = receiver.deliver(object.oid, object.data).then(
        () => void inFlight.delete(delivery),
        (err) => {
          failure ??= err;
          inFlight.delete(delivery);
        },
      );
      inFlight.add(delivery);
      delivered.set(object.oid, delivery);
      if (inFlight.size >= limits.deliveries) await Promise.race(inFlight);
    },
  });
  // Depth 1 whatever the volume's: only this commit's blobs are wanted.
  await client.fetch({ wants: [commit], depth: 1, filter: `blob:limit=${limits.maxBlobBytes}` }, (chunk) => parser.push(chunk));
  await parser.end();
  await Promise.all(inFlight);
  if (failure) throw failure;
}

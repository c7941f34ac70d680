import { PackParser } from './packParser';
import { UploadPackClient } from './uploadPackClient';

/** Where the blobs of a transfer parsed on this thread go, and how one comes back as a delta's base (structurally part of the hydrator's BlobReceiver, which this layer cannot name). */
export interface BlobReceiver {
  /** Takes one blob of the transfer, its id already computed from its content. */
  deliver(oid: string, content: Buffer): Promise<void>;
  /** A blob delivered earlier, read back. */
  readBack(oid: string): Promise<Buffer>;
  /** The largest blob it takes whole: a larger one ends the transfer with BlobTooLarge, its size said. */
  readonly largest?: number;
}

/** Takes a transfer's pack as it arrives: parses it here, or hands it to a thread that does. */
export interface PackSink {
  /** Resolves when the sink can take more (a slow consumer slows the transfer). */
  push(chunk: Buffer): Promise<void>;
  /** The pack is complete: resolves once every blob in it is delivered. */
  end(): Promise<void>;
  /** The transfer broke: drop what is pending. */
  abort(): void;
}

/** A sink for a transfer's pack, made once the server has said how it names objects. */
export type PackSinkFor = (objectFormat: 'sha1' | 'sha256') => PackSink;

export interface BlobTransferLimits {
  /** Larger blobs are left out of a commit's transfer (the server filters them), to be fetched by id and streamed. */
  maxBlobBytes: number;
  /** Blob content held for deltas; older bases are read back from the receiver. */
  baseBytes: number;
  /** Deliveries (cache writes) in flight at once, and their bytes. */
  deliveries: number;
  deliveryBytes: number;
}

export const DEFAULT_BLOB_TRANSFER: BlobTransferLimits = { maxBlobBytes: 64 * 1024 * 1024, baseBytes: 64 * 1024 * 1024, deliveries: 32, deliveryBytes: 64 * 1024 * 1024 };

/**
 * Fetches blobs in one transfer, the pack handed to the sink as it arrives, so each blob can be
 * delivered while the rest is still on its way. Nothing goes into the store. Either every blob of
 * one commit, as a clone would fetch them (the server reuses its deltas, which it cannot for a
 * list of ids; blobs over `maxBlobBytes` are left out), or blobs by id, held whole (the receiver's
 * `largest` stops a transfer whose blob turns out larger).
 */
export async function transferBlobs(
  client: UploadPackClient,
  wanted: { commit: string } | { oids: string[] },
  sinkFor: PackSinkFor,
  maxBlobBytes = DEFAULT_BLOB_TRANSFER.maxBlobBytes,
): Promise<void> {
  // A commit at depth 1 whatever the volume's depth: only this commit's blobs are wanted.
  const request = 'commit' in wanted ? { wants: [wanted.commit], depth: 1, filter: `blob:limit=${maxBlobBytes}` } : { wants: wanted.oids };
  const sink = sinkFor(await client.objectFormat());
  try {
    await client.fetch(request, (chunk) => sink.push(chunk));
    await sink.end();
  } catch (err) {
    sink.abort();
    throw err;
  }
}

/** Parses a pack on this thread, delivering each blob as soon as it is parsed. */
export function blobUnpacker(objectFormat: 'sha1' | 'sha256', receiver: BlobReceiver, limits = DEFAULT_BLOB_TRANSFER): PackSink {
  const inFlight = new Set<Promise<void>>();
  let inFlightBytes = 0;
  const delivered = new Map<string, Promise<void>>();
  let failure: unknown;
  const parser = new PackParser({
    objectFormat,
    blobBaseBudget: limits.baseBytes,
    maxObjectBytes: receiver.largest,
    loadBlob: async (oid) => {
      await delivered.get(oid);
      return receiver.readBack(oid);
    },
    onObject: async (object) => {
      if (failure) throw failure;
      if (object.kind !== 'blob') return;
      const bytes = object.data.length;
      const settle = () => {
        inFlight.delete(delivery);
        inFlightBytes -= bytes;
      };
      const delivery: Promise<void> = receiver.deliver(object.oid, object.data).then(settle, (err) => {
        failure ??= err;
        settle();
      });
      inFlight.add(delivery);
      inFlightBytes += bytes;
      delivered.set(object.oid, delivery);
      // Bounded, so a slow disk slows the transfer instead of filling memory.
      while (inFlight.size >= limits.deliveries || (inFlightBytes > limits.deliveryBytes && inFlight.size > 1)) await Promise.race(inFlight);
    },
  });
  return {
    push: (chunk) => parser.push(chunk),
    end: async () => {
      await parser.end();
      await Promise.all(inFlight);
      if (failure) throw failure;
    },
    abort: () => undefined, // deliveries in flight settle on their own
  };
}

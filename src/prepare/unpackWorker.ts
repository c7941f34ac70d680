// The unpacking thread (see UnpackThread): parses packs and appends their blobs to the cache's segments.
import { parentPort, workerData } from 'node:worker_threads';
import { SegmentAppender } from '../cache/segmentAppender';
import { SegmentReader } from '../cache/segmentReader';
import { BlobLocation, ServableBlobs } from '../cache/servableBlobs';
import { GitfsError, ObjectMissing } from '../errors/errors';
import { PackParser } from '../git/packParser';
import type { FromUnpacker, ToUnpacker, UnpackerData } from './unpackThread';

interface Job {
  parser: PackParser;
  /** Blobs written since the last report. */
  stored: Array<[oid: string, segment: number, offset: number, size: number]>;
  /** Where this pack's blobs are, to read back the bases of its deltas. */
  written: Map<string, BlobLocation>;
  /** Chunks are parsed strictly in order, one after another. */
  queue: Promise<void>;
}

const port = parentPort!;
const { servable: servableMemory, segmentBytes } = workerData as UnpackerData;
const servable = new ServableBlobs(servableMemory);
const appender = new SegmentAppender(servable, segmentBytes, sealed);
const reader = new SegmentReader(servable);
const jobs = new Map<number, Job>();

port.on('message', (message: ToUnpacker) => {
  const id = message.job;
  if ('start' in message) {
    jobs.set(id, startJob(message.start));
    return;
  }
  const job = jobs.get(id);
  if (!job) return; // failed or abandoned: what follows is dropped
  if ('abort' in message) {
    ended(id);
    return;
  }
  job.queue = job.queue
    .then(async () => {
      if (!jobs.has(id)) return;
      if ('chunk' in message) {
        const chunk = message.chunk;
        await job.parser.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        report(id, job, chunk.byteLength);
      } else {
        await job.parser.end();
        report(id, job, 0);
        ended(id);
        send({ job: id, done: true });
      }
    })
    .catch((err: unknown) => {
      if (!jobs.has(id)) return;
      ended(id);
      send({ job: id, error: err instanceof GitfsError ? { kind: err.kind, message: err.message } : { kind: 'internal', message: `unpacking failed: ${(err as Error).message}` } });
    });
});

function startJob(start: Extract<ToUnpacker, { start: unknown }>['start']): Job {
  const job: Job = {
    stored: [],
    written: new Map(),
    queue: Promise.resolve(),
    parser: new PackParser({
      objectFormat: start.objectFormat,
      blobBaseBudget: start.baseBytes,
      // Every blob delivered is already in a segment: appended synchronously below.
      loadBlob: async (oid) => {
        const at = job.written.get(oid);
        if (at) {
          const content = Buffer.allocUnsafe(at.size);
          if (reader.readAt(at, 0, at.size, content, 0) === at.size) return content;
        }
        throw new ObjectMissing(oid, `delta base ${oid} is no longer in the cache`);
      },
      onObject: (object) => {
        if (object.kind !== 'blob') return;
        const at = appender.appendSync(object.oid, object.data);
        job.written.set(object.oid, at);
        job.stored.push([object.oid, at.segment, at.offset, at.size]);
      },
    }),
  };
  return job;
}

function ended(id: number): void {
  jobs.delete(id);
  sealIfIdle();
}

/** An idle thread seals its segment, so that eviction may take it. */
function sealIfIdle(): void {
  if (jobs.size === 0) appender.seal();
}

/** The blobs of a sealed segment are reported before the seal is. */
function sealed(segment: number): void {
  for (const [id, job] of jobs) if (job.stored.length > 0) report(id, job, 0);
  send({ sealed: segment });
}

/** One message per chunk parsed: the blobs it completed and the bytes it took off the queue. */
function report(id: number, job: Job, consumed: number): void {
  send({ job: id, stored: job.stored, consumed });
  job.stored = [];
  sealIfIdle(); // a job abandoned mid-chunk has appended since it ended
}

function send(message: FromUnpacker): void {
  port.postMessage(message);
}

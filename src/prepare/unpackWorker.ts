// The unpacking thread (see UnpackThread): parses packs and writes their blobs into the cache.
import { readFileSync } from 'node:fs';
import { parentPort, threadId } from 'node:worker_threads';
import { blobPath, writeBlobFileSync } from '../cache/blobFiles';
import { GitfsError } from '../errors/errors';
import { PackParser } from '../git/packParser';
import type { FromUnpacker, ToUnpacker } from './unpackThread';

interface Job {
  parser: PackParser;
  /** Blobs written since the last report. */
  stored: Array<[string, number]>;
  /** Chunks are parsed strictly in order, one after another. */
  queue: Promise<void>;
}

const port = parentPort!;
const jobs = new Map<number, Job>();
let writes = 0;

port.on('message', (message: ToUnpacker) => {
  const id = message.job;
  if ('start' in message) {
    jobs.set(id, startJob(message.start));
    return;
  }
  const job = jobs.get(id);
  if (!job) return; // failed or abandoned: what follows is dropped
  if ('abort' in message) {
    jobs.delete(id);
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
        jobs.delete(id);
        send({ job: id, done: true });
      }
    })
    .catch((err: unknown) => {
      if (!jobs.delete(id)) return;
      send({ job: id, error: err instanceof GitfsError ? { kind: err.kind, message: err.message } : { kind: 'internal', message: `unpacking failed: ${(err as Error).message}` } });
    });
});

function startJob(start: Extract<ToUnpacker, { start: unknown }>['start']): Job {
  const job: Job = {
    stored: [],
    queue: Promise.resolve(),
    parser: new PackParser({
      objectFormat: start.objectFormat,
      blobBaseBudget: start.baseBytes,
      // Every blob delivered is already on disk: written synchronously below.
      loadBlob: async (oid) => readFileSync(blobPath(start.cacheDir, oid)),
      onObject: (object) => {
        if (object.kind !== 'blob') return;
        writeBlobFileSync(start.cacheDir, object.oid, object.data, `t${threadId}-${++writes}`);
        job.stored.push([object.oid, object.data.length]);
      },
    }),
  };
  return job;
}

/** One message per chunk parsed: the blobs it completed and the bytes it took off the queue. */
function report(id: number, job: Job, consumed: number): void {
  send({ job: id, stored: job.stored, consumed });
  job.stored = [];
}

function send(message: FromUnpacker): void {
  port.postMessage(message);
}

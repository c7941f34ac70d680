// A FUSE serving thread (see ServingThreads): waits on every connection of the node at once,
// answers what the tree and the cache can answer, and hands the rest to the main thread.
import { writeSync } from 'node:fs';
import { MessagePort, parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { SegmentReader } from '../cache/segmentReader';
import { ServableBlobs, ServableBlobsMemory } from '../cache/servableBlobs';
import { TreeIndex } from '../tree/treeIndex';
import { Errno } from './errno';
import { fuseDevice } from './fuseDevice';
import { MAX_WRITE } from './initNegotiation';
import { Op } from './protocol';
import { RequestStats } from './requestStats';
import type { FromServingThread, ToServingThread } from './servingThreads';
import { answer, ConnectionFacts, Need, NO_REPLY, REQUEST_COUNT_SLOTS, ServedTree } from './treeAnswers';

interface Connection {
  facts: ConnectionFacts;
  tree?: ServedTree;
}

const { epoll, wake, control, servable: servableMemory, stats: statsMemory } = workerData as {
  epoll: number;
  wake: number;
  control: MessagePort;
  servable: ServableBlobsMemory;
  stats: SharedArrayBuffer;
};
const stats = new RequestStats(statsMemory);
const native = fuseDevice();
const blobs = new SegmentReader(new ServableBlobs(servableMemory));
const connections = new Map<number, Connection>();
const report = (message: FromServingThread) => parentPort!.postMessage(message);
// A request is at most a WRITE of max_write bytes plus its headers; replies up to 256 pages.
const request = Buffer.alloc(MAX_WRITE + 8192);
const reply = Buffer.alloc(256 * 4096 + 16);
const ready = new Int32Array(1);
let stopping = false;

function takeControlMessages(): void {
  for (let received = receiveMessageOnPort(control); received; received = receiveMessageOnPort(control)) {
    const message = received.message as ToServingThread;
    if ('add' in message) connections.set(message.add, { facts: message.facts });
    else if ('tree' in message) {
      const connection = connections.get(message.tree);
      if (connection) connection.tree = { index: new TreeIndex(message.columns), lookups: message.lookups, commitSeconds: message.commitSeconds };
    } else if ('remove' in message) {
      native.epollRemove(epoll, message.remove);
      connections.delete(message.remove);
      report({ removed: message.remove });
    } else stopping = true;
  }
}

function forward(fd: number, length: number, need: number): void {
  // Copied, not transferred: the first ArrayBuffer a thread detaches deoptimizes all of its typed-array code.
  report({ fd, need, request: request.buffer.slice(request.byteOffset, request.byteOffset + length) as ArrayBuffer });
}

function serve(fd: number, length: number): void {
  if (!connections.has(fd)) takeControlMessages();
  const connection = connections.get(fd);
  // Not announced (or already removed here): the main thread knows the connection.
  if (!connection) return forward(fd, length, Need.MainThread);
  const started = performance.now();
  const op = length >= 8 ? request.readUInt32LE(4) : 0;
  Atomics.add(connection.facts.requests, op < REQUEST_COUNT_SLOTS ? op : 0, 1);
  const result = answer(request, length, connection.facts, connection.tree, blobs, reply);
  if (result === NO_REPLY) return stats.record(op, 0, 0);
  if (op === Op.READ && (result >= 0 || result === Need.Blob)) stats.recordRead(result >= 0);
  // The main thread counts what it answers.
  if (result < 0) return forward(fd, length, result);
  try {
    writeSync(fd, reply, 0, result);
    stats.record(op, (performance.now() - started) * 1000, -reply.readInt32LE(4));
  } catch (err) {
    // ENOENT: the request was interrupted and is gone; anything else is the main thread's to log.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') report({ fd, writeFailed: (err as NodeJS.ErrnoException).code ?? String(err) });
  }
}

while (!stopping) {
  const length = native.waitRequest(epoll, request, 1000, ready);
  const fd = ready[0];
  if (fd === -1 || fd === wake) {
    takeControlMessages();
    continue;
  }
  if (length === -Errno.EAGAIN || length === -Errno.EINTR) continue; // another thread took it
  if (length <= 0) {
    // ENODEV: unmounted, or the connection was aborted. Nothing more will come from it.
    native.epollRemove(epoll, fd);
    connections.delete(fd);
    report({ ended: fd, errno: -length });
    continue;
  }
  serve(fd, length);
}

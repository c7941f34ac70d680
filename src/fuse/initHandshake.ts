import { readSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { GitfsError } from '../errors/errors';
import { KernelProfile, MAX_WRITE, negotiate, Negotiated, writeInitReply } from './initNegotiation';
import { IN_HEADER, INIT_OUT, Op, OUT_HEADER } from './protocol';
import { header } from './treeAnswers';

/**
 * Where every connection's INIT is read: the kernel refuses a read into a buffer that could not hold a
 * whole WRITE request, and the INIT in it is used up before anything else runs, so handshakes share it.
 */
const INIT_REQUEST = Buffer.allocUnsafe(MAX_WRITE + 8192);

/**
 * Answers the INIT the kernel queues on a new connection as it is mounted. The descriptor is
 * non-blocking, so this polls (the request is normally there at once) and never blocks the
 * thread, within `deadlineMs`.
 */
export async function answerInit(fd: number, deadlineMs: number, profile?: KernelProfile): Promise<Negotiated> {
  const request = INIT_REQUEST;
  const until = Date.now() + deadlineMs;
  for (;;) {
    let length: number;
    try {
      length = readSync(fd, request, 0, request.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EINTR') throw new GitfsError('internal', `reading the FUSE connection's INIT failed: ${code}`, { cause: err });
      if (Date.now() > until) throw new GitfsError('internal', `the kernel sent no FUSE INIT within ${deadlineMs / 1000} s`);
      await sleep(1);
      continue;
    }
    if (length < IN_HEADER + 16 || request.readUInt32LE(4) !== Op.INIT) throw new GitfsError('internal', `the FUSE connection's first request was not INIT (opcode ${request.readUInt32LE(4)})`);
    const negotiated = negotiate(request.subarray(0, length), IN_HEADER, profile);
    const reply = Buffer.alloc(OUT_HEADER + INIT_OUT);
    header(reply, request, writeInitReply(reply, negotiated), 0);
    writeSync(fd, reply);
    return negotiated;
  }
}

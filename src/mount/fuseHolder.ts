import { closeSync } from 'node:fs';
import { GitfsError } from '../errors/errors';
import { fuseDevice } from '../fuse/fuseDevice';

/**
 * The protocol between a FUSE server and the process that holds its /dev/fuse descriptors
 * (`gitfs-csi fuse-holder`): a connection on a unix seqpacket socket per call, one JSON request
 * (with a descriptor for `hold`), one JSON answer (with the descriptor for `take`). While the
 * holder keeps a connection's descriptor, the mount outlives its server: requests wait in the
 * kernel until a successor takes the descriptor and serves them. Version 1.
 */
export type HolderRequest =
  | { op: 'hold'; key: string; state: HeldState }
  | { op: 'take'; key: string }
  | { op: 'drop'; key: string }
  | { op: 'list' };

export type HolderAnswer = { ok: true; state?: HeldState; keys?: string[] } | { ok: false; error: string };

/** What a successor needs to go on serving a connection: plain data, kept beside the descriptor. */
export interface HeldState {
  version: 1;
  /** The negotiated INIT (initNegotiation's Negotiated). */
  negotiated: unknown;
  /** Who mounted it and how it shows, for logs and checks. */
  source: string;
}

export const HOLDER_PROTOCOL_VERSION = 1;
/** The largest message either side sends (a list of many mounts' keys). */
export const HOLDER_MESSAGE_BYTES = 1 << 20;
const CALL_TIMEOUT_MS = 5_000;

/** A client of the holder at `socket`. Each call is short, local and bounded. */
export class FuseHolder {
  constructor(readonly socket: string) {}

  /** Whether a holder answers at the socket. */
  alive(): boolean {
    try {
      this.call({ op: 'list' });
      return true;
    } catch {
      return false;
    }
  }

  /** Hands the holder its own copy of connection `fd` (the caller keeps serving on `fd`). */
  hold(key: string, fd: number, state: HeldState): void {
    this.call({ op: 'hold', key, state }, [fd]);
  }

  /** A copy of the held connection for `key`, or undefined if none is held. */
  take(key: string): { fd: number; state: HeldState } | undefined {
    const { answer, fds } = this.exchange({ op: 'take', key });
    if (!answer.ok) return undefined;
    if (fds.length !== 1 || !answer.state) throw new GitfsError('internal', `the FUSE holder at ${this.socket} answered take without a descriptor`);
    return { fd: fds[0], state: answer.state };
  }

  /** The holder closes its copy: once the server's is closed too, the connection ends. */
  drop(key: string): void {
    this.call({ op: 'drop', key });
  }

  list(): string[] {
    return this.call({ op: 'list' }).keys ?? [];
  }

  private call(request: HolderRequest, fds: number[] = []): Extract<HolderAnswer, { ok: true }> {
    const { answer } = this.exchange(request, fds);
    if (!answer.ok) throw new GitfsError('internal', `the FUSE holder at ${this.socket} refused ${request.op}: ${answer.error}`);
    return answer;
  }

  private exchange(request: HolderRequest, fds: number[] = []): { answer: HolderAnswer; fds: number[] } {
    const native = fuseDevice();
    let socket: number;
    try {
      socket = native.connectUnix(this.socket, CALL_TIMEOUT_MS);
    } catch (err) {
      throw new GitfsError('unavailable', `no FUSE holder answers at ${this.socket}: ${(err as Error).message}`, { cause: err });
    }
    try {
      native.sendFds(socket, Buffer.from(JSON.stringify(request)), fds);
      const reply = native.receiveFds(socket, HOLDER_MESSAGE_BYTES);
      if (reply.data.length === 0) throw new GitfsError('internal', `the FUSE holder at ${this.socket} closed the connection without answering ${request.op}`);
      return { answer: JSON.parse(reply.data.toString('utf8')) as HolderAnswer, fds: reply.fds };
    } finally {
      closeSync(socket);
    }
  }
}

import { closeSync, unlinkSync } from 'node:fs';
import { fuseDevice } from '../fuse/fuseDevice';
import { Logger } from '../log/logger';
import { HeldState, HOLDER_MESSAGE_BYTES, HolderAnswer, HolderRequest } from './fuseHolder';

export interface HolderOptions {
  socket: string;
  /** Exit once nothing has been held for this long (0: never), so a holder a node plugin started leaves with its last mount. */
  exitWhenIdleMs: number;
}

/**
 * The holder's whole life: keep the /dev/fuse descriptors servers hand it, give copies to their
 * successors, close them when told. It does nothing else, so it has nothing to crash on or to
 * upgrade often; one call at a time, each bounded by socket timeouts.
 */
export function serveFuseHolder(options: HolderOptions, log: Logger): void {
  const native = fuseDevice();
  try {
    closeSync(native.connectUnix(options.socket, 1000));
    log.info({ socket: options.socket }, 'another FUSE holder already serves this socket; exiting');
    return;
  } catch {
    // nobody answers: ours to serve
  }
  try {
    unlinkSync(options.socket); // a holder that died left its socket file; nobody answers there
  } catch {
    // none
  }
  const listener = native.listenUnix(options.socket);
  const held = new Map<string, { fd: number; state: HeldState }>();
  let idleSince = Date.now();
  log.info({ socket: options.socket }, 'FUSE holder serving');
  for (;;) {
    const waitMs = options.exitWhenIdleMs > 0 && held.size === 0 ? Math.max(1, options.exitWhenIdleMs - (Date.now() - idleSince)) : 0;
    const connection = native.acceptUnix(listener, waitMs);
    if (connection < 0) {
      if (held.size === 0 && Date.now() - idleSince >= options.exitWhenIdleMs) break;
      continue;
    }
    try {
      const message = native.receiveFds(connection, HOLDER_MESSAGE_BYTES);
      const { answer, fds } = handle(message, held, log);
      native.sendFds(connection, Buffer.from(JSON.stringify(answer)), fds);
    } catch (err) {
      log.warn({ err }, 'a FUSE holder call failed');
    } finally {
      closeSync(connection);
    }
    if (held.size === 0) idleSince = Date.now();
  }
  closeSync(listener);
  try {
    unlinkSync(options.socket);
  } catch {
    // gone already
  }
  log.info('FUSE holder exiting: nothing left to hold');
}

function handle(message: { data: Buffer; fds: number[] }, held: Map<string, { fd: number; state: HeldState }>, log: Logger): { answer: HolderAnswer; fds: number[] } {
  let request: HolderRequest;
  try {
    request = JSON.parse(message.data.toString('utf8')) as HolderRequest;
  } catch {
    for (const fd of message.fds) closeSync(fd);
    return { answer: { ok: false, error: 'the request is not JSON' }, fds: [] };
  }
  switch (request.op) {
    case 'hold': {
      if (message.fds.length !== 1 || typeof request.key !== 'string') {
        for (const fd of message.fds) closeSync(fd);
        return { answer: { ok: false, error: 'hold takes a key and exactly one descriptor' }, fds: [] };
      }
      const previous = held.get(request.key);
      if (previous) closeSync(previous.fd);
      held.set(request.key, { fd: message.fds[0], state: request.state });
      log.info({ key: request.key, held: held.size }, 'holding a FUSE connection');
      return { answer: { ok: true }, fds: [] };
    }
    case 'take': {
      const entry = held.get(request.key);
      return entry ? { answer: { ok: true, state: entry.state }, fds: [entry.fd] } : { answer: { ok: false, error: `nothing is held for ${request.key}` }, fds: [] };
    }
    case 'drop': {
      const entry = held.get(request.key);
      if (entry) {
        closeSync(entry.fd);
        held.delete(request.key);
        log.info({ key: request.key, held: held.size }, 'released a FUSE connection');
      }
      return { answer: { ok: true }, fds: [] };
    }
    case 'list':
      return { answer: { ok: true, keys: [...held.keys()] }, fds: [] };
    default:
      for (const fd of message.fds) closeSync(fd);
      return { answer: { ok: false, error: `unknown op ${JSON.stringify((request as { op?: unknown }).op)}` }, fds: [] };
  }
}

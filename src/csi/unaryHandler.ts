import { handleUnaryCall, status } from '@grpc/grpc-js';
import { asGitfsError } from '../errors/errors';
import { Logger } from '../log/logger';
import { redact } from '../log/redact';
import { statusOf } from './statusOf';

/** Told how each call ended (its gRPC status code's name) and how long it took. */
export type CallObserver = (method: string, code: string, seconds: number) => void;

/** A call running this long is logged, and again each time as long again: a stuck call shows while it is stuck. */
export const SLOW_CALL_MS = 30_000;

/**
 * Adapts an async CSI method to grpc-js: answers with its result, or with the status code
 * of the typed error it threw and a redacted message. Kubelet cancelling a call does not
 * stop the work behind it: preparation carries on for the retry to attach to.
 */
export function unary<Request, Response>(
  method: string,
  log: Logger,
  handler: (request: Request) => Promise<Response>,
  options: { slowCallMs?: number; observe?: CallObserver } = {},
): handleUnaryCall<Request, Response> {
  const slowCallMs = options.slowCallMs ?? SLOW_CALL_MS;
  return (call, callback) => {
    const started = Date.now();
    const context = { method, ...subjectOf(call.request) };
    const watchdog = setInterval(() => log.warn({ ...context, ms: Date.now() - started }, 'call still running'), slowCallMs);
    watchdog.unref();
    call.on('cancelled', () => log.info({ ...context, ms: Date.now() - started }, 'the caller gave up on the call; its work goes on'));
    handler(call.request).then(
      (response) => {
        clearInterval(watchdog);
        options.observe?.(method, 'OK', (Date.now() - started) / 1000);
        log.debug({ ...context, ms: Date.now() - started }, 'call answered');
        callback(null, response);
      },
      (err: unknown) => {
        clearInterval(watchdog);
        const failure = asGitfsError(err);
        const code = statusOf(failure);
        options.observe?.(method, status[code], (Date.now() - started) / 1000);
        const level = code === status.INTERNAL ? 'error' : 'info';
        log[level]({ ...context, code: status[code], err: failure, ms: Date.now() - started }, 'call failed');
        callback({ code, details: redact(failure.message) });
      },
    );
  };
}

/** What a call is about, for its log lines: ids and paths only, never secrets or volume context. */
function subjectOf(request: unknown): Record<string, string> {
  const subject: Record<string, string> = {};
  if (typeof request !== 'object' || request === null) return subject;
  for (const [field, key] of [['volume_id', 'volumeId'], ['target_path', 'target'], ['volume_path', 'target'], ['name', 'name']] as const) {
    const value = (request as Record<string, unknown>)[field];
    if (typeof value === 'string' && value) subject[key] = value.slice(0, 256);
  }
  return subject;
}

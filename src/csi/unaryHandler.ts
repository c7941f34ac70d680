import { handleUnaryCall, status } from '@grpc/grpc-js';
import { asGitfsError } from '../errors/errors';
import { Logger } from '../log/logger';
import { redact } from '../log/redact';
import { statusOf } from './statusOf';

/**
 * Adapts an async CSI method to grpc-js: answers with its result, or with the status code
 * of the typed error it threw and a redacted message. Kubelet cancelling a call does not
 * stop the work behind it: preparation carries on for the retry to attach to.
 */
export function unary<Request, Response>(method: string, log: Logger, handler: (request: Request) => Promise<Response>): handleUnaryCall<Request, Response> {
  return (call, callback) => {
    const started = Date.now();
    handler(call.request).then(
      (response) => {
        log.debug({ method, ms: Date.now() - started }, 'call answered');
        callback(null, response);
      },
      (err: unknown) => {
        const failure = asGitfsError(err);
        const code = statusOf(failure);
        const level = code === status.INTERNAL ? 'error' : 'info';
        log[level]({ method, code: status[code], err: failure, ms: Date.now() - started }, 'call failed');
        callback({ code, details: redact(failure.message) });
      },
    );
  };
}

import pino from 'pino';
import { redact } from './redact';

/**
 * The process-wide pino logger. Every string that leaves through it is redacted, so a
 * URL with userinfo or a token passed by mistake never reaches a log line.
 */

export type Logger = pino.Logger;

function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redact(value);
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) {
    return { type: value.name, message: redact(value.message), ...('kind' in value ? { kind: (value as { kind: unknown }).kind } : {}) };
  }
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = redactValue(v, depth + 1);
  return out;
}

export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  return pino(
    {
      name: 'gitfs-csi',
      level: options.level ?? process.env.GITFS_LOG_LEVEL ?? 'info',
      base: { pid: process.pid },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((a) => redactValue(a)) as Parameters<typeof method>);
        },
      },
    },
    options.destination ?? pino.destination(2),
  );
}

/** A logger that drops everything, for library users that pass none. */
export const silentLogger: Logger = pino({ level: 'silent' });

import pino from 'pino';
import { InvalidArgument } from '../errors/errors';
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

const LEVELS = [...Object.keys(pino.levels.values), 'silent'];

/** The level asked for (`--log-level`, else GITFS_LOG_LEVEL, else info), refused with the field named unless pino knows it. */
function levelOf(asked: string | undefined): string {
  const [field, level] = asked !== undefined ? ['--log-level', asked] : ['GITFS_LOG_LEVEL', process.env.GITFS_LOG_LEVEL ?? 'info'];
  if (!LEVELS.includes(level)) throw new InvalidArgument(field, `"${redact(level).slice(0, 50)}" is not a log level; expected one of ${LEVELS.join(', ')}`);
  return level;
}

export function createLogger(options: { level?: string; destination?: pino.DestinationStream } = {}): Logger {
  return pino(
    {
      name: 'gitfs-csi',
      level: levelOf(options.level),
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

import { GitfsError } from '../errors/errors';

export interface RetryPolicy {
  attempts: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, firstDelayMs: 250, maxDelayMs: 4000 };

/**
 * Runs `operation` again after transient transport failures (5xx, early EOF, reset), with
 * exponential backoff and jitter. Auth failures, "not found" and the rest fail at once.
 */
export async function withRetry<T>(operation: (attempt: number) => Promise<T>, policy: RetryPolicy = DEFAULT_RETRY): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (err) {
      const transient = err instanceof GitfsError && err.kind === 'transient';
      if (!transient || attempt >= policy.attempts) throw err;
      const delay = Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** (attempt - 1));
      await new Promise((resolve) => setTimeout(resolve, delay * (0.75 + Math.random() * 0.5)));
    }
  }
}

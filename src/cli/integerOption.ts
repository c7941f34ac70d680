import { InvalidArgument } from '../errors/errors';

/** A whole-number flag: `fallback` when absent, an error naming the flag when malformed. */
export function integerOption(text: string | undefined, field: string, fallback: number, allowZero = false): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text) || (!allowZero && Number(text) === 0)) throw new InvalidArgument(field, `"${text}" is not a ${allowZero ? 'non-negative' : 'positive'} integer`);
  return Number(text);
}

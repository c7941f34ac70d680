import { isAbsolute } from 'node:path';
import { InvalidArgument } from '../errors/errors';

/** A request field CSI requires: absent or empty is INVALID_ARGUMENT naming it. */
export function required<T extends string | unknown[]>(value: T | undefined | null, field: string): T {
  if (!value || value.length === 0) throw new InvalidArgument(field, 'is required');
  return value;
}

/** Kubelet's paths are absolute; a relative one would land wherever the plugin happens to run. */
export function absolutePath(value: string | undefined, field: string): string {
  const path = required(value, field);
  if (!isAbsolute(path)) throw new InvalidArgument(field, `"${path.slice(0, 200)}" is not an absolute path`);
  return path;
}

import { InvalidArgument } from '../errors/errors';
import { redact } from '../log/redact';

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "1073741824", "512M", "10G", "10GiB", "1Gi" (binary units throughout) → bytes; errors name `field` and show the value redacted. */
export function parseByteSize(text: string, field: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:ib?|b)?$/i.exec(text.trim());
  const shown = redact(text).slice(0, 100);
  if (!match) throw new InvalidArgument(field, `"${shown}" is not a size; expected a number of bytes such as 1073741824, 512M, 10G or 1Gi`);
  const bytes = Math.floor(Number(match[1]) * UNITS[match[2].toLowerCase()]);
  if (bytes <= 0) throw new InvalidArgument(field, `"${shown}" must be more than 0 bytes`);
  return bytes;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

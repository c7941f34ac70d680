import { createHash, Hash } from 'node:crypto';

/** A git object id for a blob: hash("blob <size>\0" + content), SHA-1 or SHA-256 by its length. */
export function blobHasher(oid: string, size: number): Hash {
  const hash = createHash(oid.length === 64 ? 'sha256' : 'sha1');
  hash.update(`blob ${size}\0`);
  return hash;
}

export function isObjectId(text: string): boolean {
  return /^([0-9a-f]{40}|[0-9a-f]{64})$/.test(text);
}

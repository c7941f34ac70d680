import { createHash, Hash } from 'node:crypto';
import { inflateSync } from 'node:zlib';
import { BlobTooLarge, GitfsError } from '../errors/errors';
import { applyDelta } from './packDelta';

export type ObjectKind = 'commit' | 'tree' | 'blob' | 'tag';

const KINDS: Array<ObjectKind | undefined> = [undefined, 'commit', 'tree', 'blob', 'tag'];
const OFS_DELTA = 6;
const REF_DELTA = 7;

/** One object out of a pack: deltas already applied, its id computed from its content. */
export interface PackObject {
  kind: ObjectKind;
  oid: string;
  data: Buffer;
}

export interface PackParserOptions {
  objectFormat: 'sha1' | 'sha256';
  /** Awaited before the next object is parsed, so a slow consumer slows the stream. */
  onObject(object: PackObject): void | Promise<void>;
  /**
   * Bytes of blob content kept as delta bases (default: all). Commits and trees are always
   * kept; a blob dropped under this budget is asked back from `loadBlob` when a delta needs it.
   */
  blobBaseBudget?: number;
  loadBlob?(oid: string): Promise<Buffer>;
  /** The largest object taken: a larger one stops parsing with BlobTooLarge, before it is inflated unless it is a delta. */
  maxObjectBytes?: number;
}

interface Base {
  kind: ObjectKind;
  oid: string;
  data: Buffer | undefined;
}

/**
 * Parses a git pack as it streams in (version 2: header, objects, trailing checksum). Pack
 * entries carry no lengths of their compressed data, so each is inflated from where it starts
 * and the inflater says where it ended; an entry cut off by the end of what has arrived is tried
 * again only once twice as much has, so a large entry costs about twice its inflation, not once
 * per chunk. Deltas name bases earlier in the pack (by offset or id), which are kept for them.
 */
export class PackParser {
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Pending bytes needed before parsing is worth trying again. */
  private retryAt = 12;
  /** Pack offset of the first pending byte. */
  private offset = 0;
  private total = -1;
  private parsed = 0;
  private finished = false;
  private readonly checksum: Hash;
  private readonly hashBytes: number;
  private readonly bases = new Map<number, Base>();
  private readonly offsetsByOid = new Map<string, number>();
  /** Offsets of kept blob bases, oldest first, and their bytes. */
  private readonly keptBlobs: number[] = [];
  private keptBlobBytes = 0;

  constructor(private readonly options: PackParserOptions) {
    const algorithm = options.objectFormat === 'sha256' ? 'sha256' : 'sha1';
    this.checksum = createHash(algorithm);
    this.hashBytes = algorithm === 'sha256' ? 32 : 20;
  }

  async push(chunk: Buffer): Promise<void> {
    if (this.finished) {
      if (chunk.length) throw corrupt('data follows the checksum');
      return;
    }
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= this.retryAt) await this.parse(false);
  }

  /** The stream has ended: everything must have been parsed, checksum included. */
  async end(): Promise<void> {
    if (!this.finished) await this.parse(true);
    if (!this.finished) throw corrupt(`the pack ended after ${this.parsed} of ${Math.max(this.total, 0)} objects`);
  }

  private async parse(atEnd: boolean): Promise<void> {
    const buf = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    let at = 0;
    let needMore = false;
    while (!this.finished && !needMore) {
      if (this.total < 0) {
        if (buf.length - at < 12) needMore = true;
        else at = this.header(buf, at);
        continue;
      }
      if (this.parsed === this.total) {
        if (buf.length - at < this.hashBytes) needMore = true;
        else at = this.trailer(buf, at);
        continue;
      }
      const next = await this.object(buf, at, atEnd);
      if (next < 0) needMore = true;
      else at = next;
    }
    const rest = buf.subarray(at);
    this.offset += at;
    this.pending.length = 0;
    if (rest.length) this.pending.push(rest);
    this.pendingBytes = rest.length;
    this.retryAt = Math.max(this.pendingBytes + 1, this.pendingBytes * 2);
  }

  private header(buf: Buffer, at: number): number {
    if (buf.toString('latin1', at, at + 4) !== 'PACK') throw corrupt('it does not start with "PACK"');
    const version = buf.readUInt32BE(at + 4);
    if (version !== 2 && version !== 3) throw corrupt(`version ${version} is not one git writes`);
    this.total = buf.readUInt32BE(at + 8);
    this.checksum.update(buf.subarray(at, at + 12));
    return at + 12;
  }

  private trailer(buf: Buffer, at: number): number {
    const expected = buf.subarray(at, at + this.hashBytes);
    if (!this.checksum.digest().equals(expected)) throw corrupt('its checksum does not match its content');
    this.finished = true;
    return at + this.hashBytes;
  }

  /** Parses the entry at `at`; returns where the next begins, or -1 when more bytes are needed. */
  private async object(buf: Buffer, start: number, atEnd: boolean): Promise<number> {
    let at = start;
    if (at >= buf.length) return -1;
    let byte = buf[at++];
    const type = (byte >> 4) & 7;
    let size = byte & 15;
    for (let scale = 16; byte & 0x80; scale *= 128) {
      if (at >= buf.length) return -1;
      byte = buf[at++];
      size += (byte & 0x7f) * scale;
    }
    const entryOffset = this.offset + start;
    let baseOffset: number | undefined;
    if (type === OFS_DELTA) {
      if (at >= buf.length) return -1;
      byte = buf[at++];
      let distance = byte & 0x7f;
      while (byte & 0x80) {
        if (at >= buf.length) return -1;
        byte = buf[at++];
        distance = (distance + 1) * 128 + (byte & 0x7f);
      }
      baseOffset = entryOffset - distance;
    } else if (type === REF_DELTA) {
      if (buf.length - at < this.hashBytes) return -1;
      const baseOid = buf.toString('hex', at, at + this.hashBytes);
      at += this.hashBytes;
      baseOffset = this.offsetsByOid.get(baseOid);
      if (baseOffset === undefined) throw corrupt(`a delta's base ${baseOid} is not earlier in the pack`);
    } else if (!KINDS[type]) {
      throw corrupt(`entry ${this.parsed} has the unknown type ${type}`);
    }

    // A whole object's header gives its size; a delta's gives the delta's, so its result is checked after.
    const largest = this.options.maxObjectBytes ?? Infinity;
    if (baseOffset === undefined && size > largest) throw new BlobTooLarge(size, largest);
    let inflated: Buffer;
    let used: number;
    try {
      // An output chunk of the known size: one allocation, not 16 KiB per object.
      const result = inflateSync(buf.subarray(at), { info: true, chunkSize: Math.max(64, size + 1) }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
      inflated = result.buffer;
      used = result.engine.bytesWritten;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'Z_BUF_ERROR') {
        if (!atEnd) return -1;
        throw corrupt(`the pack ended inside entry ${this.parsed} of ${this.total}`);
      }
      throw corrupt(`entry ${this.parsed} does not inflate: ${(err as Error).message}`);
    }
    if (inflated.length !== size) throw corrupt(`entry ${this.parsed} inflates to ${inflated.length} bytes, its header says ${size}`);
    const end = at + used;
    this.checksum.update(buf.subarray(start, end));

    let kind: ObjectKind;
    let data: Buffer;
    if (baseOffset === undefined) {
      kind = KINDS[type]!;
      data = inflated;
    } else {
      const base = await this.baseAt(baseOffset);
      kind = base.kind;
      data = applyDelta(base.data, inflated);
      if (data.length > largest) throw new BlobTooLarge(data.length, largest);
    }
    const oid = createHash(this.hashBytes === 32 ? 'sha256' : 'sha1').update(`${kind} ${data.length}\0`).update(data).digest('hex');
    this.keep(entryOffset, kind, oid, data);
    this.parsed++;
    await this.options.onObject({ kind, oid, data });
    return end;
  }

  private keep(offset: number, kind: ObjectKind, oid: string, data: Buffer): void {
    this.bases.set(offset, { kind, oid, data });
    this.offsetsByOid.set(oid, offset);
    if (kind !== 'blob') return;
    this.keptBlobs.push(offset);
    this.keptBlobBytes += data.length;
    const budget = this.options.blobBaseBudget ?? Infinity;
    while (this.keptBlobBytes > budget && this.keptBlobs.length > 1) {
      const dropped = this.bases.get(this.keptBlobs.shift()!)!;
      this.keptBlobBytes -= dropped.data!.length;
      dropped.data = undefined;
    }
  }

  private async baseAt(offset: number): Promise<{ kind: ObjectKind; data: Buffer }> {
    const base = this.bases.get(offset);
    if (!base) throw corrupt(`a delta names offset ${offset}, where no entry starts`);
    if (base.data) return { kind: base.kind, data: base.data };
    if (!this.options.loadBlob) throw corrupt(`the delta base ${base.oid} is no longer held`);
    return { kind: base.kind, data: await this.options.loadBlob(base.oid) };
  }
}

function corrupt(why: string): GitfsError {
  // Transient: a pack damaged in transit is fetched again.
  return new GitfsError('transient', `the received pack is corrupt: ${why}`);
}

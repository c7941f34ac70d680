/**
 * The cache's verified blobs and where each one's content is, as a hash table in shared memory,
 * so that threads serving FUSE reads find a blob without asking the main thread. One writer (the
 * cache, on the main thread) and any number of readers. Keys are the first 16 bytes of an object
 * id. A slot's version is odd while the writer changes it, and a reader keeps what it read only
 * if the version was even and the same before and after (a seqlock), so it never takes one blob's
 * key with another's location. A reader also marks what it served, which eviction reads as
 * "recently used". A full table answers "not here" for new blobs: readers then ask the main
 * thread, which is slower, never wrong.
 *
 * The same memory holds the counters every thread of the cache shares: the next segment number,
 * and how many times segments were removed (a reader then closes the files it holds open).
 */

const EMPTY = 0;
const PRESENT = 1;
const REMOVED = 2;
/** PRESENT and read by a serving thread since eviction last looked. */
const TOUCHED = 3;
const MAX_PROBES = 32;
const MAX_LOAD = 0.7;

export interface ServableBlobsMemory {
  /** The cache directory the locations refer to. */
  dir: string;
  keys: Int32Array;
  states: Int32Array;
  versions: Int32Array;
  segments: Int32Array;
  /** Where the content starts in its segment, and its size. */
  offsets: Float64Array;
  sizes: Float64Array;
  /** NEXT_SEGMENT, SEGMENTS_REMOVED. */
  counters: Int32Array;
}

/** Where a verified blob's content is. */
export interface BlobLocation {
  segment: number;
  offset: number;
  size: number;
}

const NEXT_SEGMENT = 0;
const SEGMENTS_REMOVED = 1;

export class ServableBlobs {
  private readonly mask: number;
  private used = 0;

  constructor(readonly memory: ServableBlobsMemory) {
    this.mask = memory.states.length - 1;
  }

  /** A table for about `blobs` entries (rounded up to a power of two, 44 bytes a slot). */
  static allocate(dir: string, blobs: number): ServableBlobs {
    let slots = 1024;
    while (slots * MAX_LOAD < blobs && slots < 2 ** 22) slots *= 2;
    const ints = (count: number) => new Int32Array(new SharedArrayBuffer(count * 4));
    const floats = () => new Float64Array(new SharedArrayBuffer(slots * 8));
    return new ServableBlobs({ dir, keys: ints(slots * 4), states: ints(slots), versions: ints(slots), segments: ints(slots), offsets: floats(), sizes: floats(), counters: ints(2) });
  }

  /** Adds a verified blob, or moves one (the writer only). */
  add(oid: string, at: BlobLocation): void {
    const key = keyOf(oid);
    let free = -1;
    for (let probe = 0, slot = key[0] & this.mask; probe < MAX_PROBES; probe++, slot = (slot + 1) & this.mask) {
      const state = Atomics.load(this.memory.states, slot);
      if (state === PRESENT || state === TOUCHED) {
        if (this.matches(slot, key)) return this.write(slot, key, at);
      } else {
        if (free < 0) free = slot;
        if (state === EMPTY) break;
      }
    }
    if (free < 0) return;
    // Past its load, the table only reuses what removals left: evictions keep making room.
    const fresh = Atomics.load(this.memory.states, free) === EMPTY;
    if (fresh && this.used >= this.memory.states.length * MAX_LOAD) return;
    if (fresh) this.used++;
    this.write(free, key, at);
  }

  private write(slot: number, key: Int32Array, at: BlobLocation): void {
    const { versions, keys, segments, offsets, sizes, states } = this.memory;
    const version = Atomics.add(versions, slot, 1) + 1; // odd: being written
    keys.set(key, slot * 4);
    segments[slot] = at.segment;
    offsets[slot] = at.offset;
    sizes[slot] = at.size;
    Atomics.store(versions, slot, version + 1);
    Atomics.store(states, slot, PRESENT);
  }

  /** Removes a blob before its segment goes (the writer only). */
  remove(oid: string): void {
    const slot = this.find(keyOf(oid));
    if (slot >= 0) Atomics.store(this.memory.states, slot, REMOVED);
  }

  /** Where a verified blob is (filled into `into`), or false; marks the blob used. */
  locate(oid: Uint8Array, oidAt: number, into: BlobLocation): boolean {
    const key = rawKeyOf(oid, oidAt);
    const { versions, segments, offsets, sizes, states } = this.memory;
    for (let probe = 0, slot = key[0] & this.mask; probe < MAX_PROBES; probe++, slot = (slot + 1) & this.mask) {
      const version = Atomics.load(versions, slot);
      const state = Atomics.load(states, slot);
      if (state === EMPTY) return false;
      if ((state !== PRESENT && state !== TOUCHED) || !this.matches(slot, key)) continue;
      into.segment = segments[slot];
      into.offset = offsets[slot];
      into.size = sizes[slot];
      // Changed meanwhile: the main thread, which owns the table, answers instead.
      if (version % 2 !== 0 || Atomics.load(versions, slot) !== version) return false;
      Atomics.compareExchange(states, slot, PRESENT, TOUCHED);
      return true;
    }
    return false;
  }

  /** A segment number no thread has used, for a new segment file. */
  newSegment(): number {
    return Atomics.add(this.memory.counters, NEXT_SEGMENT, 1);
  }

  /** Numbers below this are taken (by files an earlier run left). */
  segmentsFrom(next: number): void {
    Atomics.store(this.memory.counters, NEXT_SEGMENT, next);
  }

  /** Tells readers that segment files were removed: they close the ones they hold. */
  segmentsRemoved(): void {
    Atomics.add(this.memory.counters, SEGMENTS_REMOVED, 1);
  }

  /** Changes whenever segment files were removed. */
  removals(): number {
    return Atomics.load(this.memory.counters, SEGMENTS_REMOVED);
  }

  /** Whether a serving thread read the blob since the last call, clearing the mark (the writer's eviction). */
  takeTouched(oid: string): boolean {
    const slot = this.find(keyOf(oid));
    return slot >= 0 && Atomics.compareExchange(this.memory.states, slot, TOUCHED, PRESENT) === TOUCHED;
  }

  private find(key: Int32Array): number {
    for (let probe = 0, slot = key[0] & this.mask; probe < MAX_PROBES; probe++, slot = (slot + 1) & this.mask) {
      const state = Atomics.load(this.memory.states, slot);
      if (state === EMPTY) return -1;
      if ((state === PRESENT || state === TOUCHED) && this.matches(slot, key)) return slot;
    }
    return -1;
  }

  private matches(slot: number, key: Int32Array): boolean {
    const keys = this.memory.keys;
    const at = slot * 4;
    return keys[at] === key[0] && keys[at + 1] === key[1] && keys[at + 2] === key[2] && keys[at + 3] === key[3];
  }
}

const scratch = new Int32Array(4);
const scratchBytes = new Uint8Array(scratch.buffer);

function rawKeyOf(oid: Uint8Array, at: number): Int32Array {
  for (let i = 0; i < 16; i++) scratchBytes[i] = oid[at + i];
  return scratch;
}

function keyOf(oid: string): Int32Array {
  for (let i = 0; i < 16; i++) scratchBytes[i] = parseInt(oid.slice(i * 2, i * 2 + 2), 16);
  return scratch;
}

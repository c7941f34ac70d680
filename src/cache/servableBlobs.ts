/**
 * The cache's verified blobs as a hash set in shared memory, so that threads serving FUSE reads
 * can tell, without asking the main thread, that a blob's file holds its verified content. One
 * writer (the cache, on the main thread) and any number of readers. Keys are the first 16 bytes
 * of an object id; a slot's state word is written last, with Atomics, so a reader sees a key only
 * once it is whole. A reader also marks what it served, which eviction reads as "recently used".
 * A full set answers "not here" for new blobs: readers then ask the main thread, which is slower,
 * never wrong.
 */

const EMPTY = 0;
const PRESENT = 1;
const REMOVED = 2;
/** PRESENT and read by a serving thread since eviction last looked. */
const TOUCHED = 3;
const MAX_PROBES = 32;
const MAX_LOAD = 0.7;

export interface ServableBlobsMemory {
  keys: Int32Array;
  states: Int32Array;
}

export class ServableBlobs {
  private readonly mask: number;
  private used = 0;

  constructor(readonly memory: ServableBlobsMemory) {
    this.mask = memory.states.length - 1;
  }

  /** A set for about `blobs` entries (rounded up to a power of two, 20 bytes a slot). */
  static allocate(blobs: number): ServableBlobs {
    let slots = 1024;
    while (slots * MAX_LOAD < blobs && slots < 2 ** 22) slots *= 2;
    return new ServableBlobs({ keys: new Int32Array(new SharedArrayBuffer(slots * 16)), states: new Int32Array(new SharedArrayBuffer(slots * 4)) });
  }

  /** Adds a verified blob (the writer only), marked used: it was just asked for, and must outlast one eviction. */
  add(oid: string): void {
    const key = keyOf(oid);
    let free = -1;
    for (let probe = 0, slot = key[0] & this.mask; probe < MAX_PROBES; probe++, slot = (slot + 1) & this.mask) {
      const state = Atomics.load(this.memory.states, slot);
      if (state === PRESENT || state === TOUCHED) {
        if (this.matches(slot, key)) return;
      } else {
        if (free < 0) free = slot;
        if (state === EMPTY) break;
      }
    }
    if (free < 0) return;
    // Past its load, the set only reuses what removals left: evictions keep making room.
    const fresh = Atomics.load(this.memory.states, free) === EMPTY;
    if (fresh && this.used >= this.memory.states.length * MAX_LOAD) return;
    this.memory.keys.set(key, free * 4);
    if (fresh) this.used++;
    Atomics.store(this.memory.states, free, TOUCHED);
  }

  /** Removes a blob before its file goes (the writer only). */
  remove(oid: string): void {
    const slot = this.find(keyOf(oid));
    if (slot >= 0) Atomics.store(this.memory.states, slot, REMOVED);
  }

  /** True when a serving thread may read the blob's file; marks the blob used. */
  has(oid: Uint8Array, at: number): boolean {
    const slot = this.find(rawKeyOf(oid, at));
    if (slot < 0) return false;
    Atomics.compareExchange(this.memory.states, slot, PRESENT, TOUCHED);
    return true;
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

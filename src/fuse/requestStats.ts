import { Errno } from './errno';
import { opName } from './protocol';
import { REQUEST_COUNT_SLOTS } from './treeAnswers';

/** Upper bounds of the latency buckets, in seconds (a last bucket takes everything above). */
export const LATENCY_BOUNDS_SECONDS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BOUNDS_US = LATENCY_BOUNDS_SECONDS.map((s) => s * 1e6);
const ERRNO_SLOTS = 134;
/** Per operation: count, summed microseconds, then one count per bucket. */
const OP_STRIDE = 2 + BOUNDS_US.length + 1;
const ERRORS_AT = REQUEST_COUNT_SLOTS * OP_STRIDE;
const READ_HITS = ERRORS_AT + REQUEST_COUNT_SLOTS * ERRNO_SLOTS;
const READ_MISSES = READ_HITS + 1;
const SLOTS = READ_MISSES + 1;

const ERRNO_NAMES = new Map<number, string>(Object.entries(Errno).map(([name, value]) => [value, name]));

export interface OperationStats {
  /** The opcode's name ("lookup", "read"). */
  op: string;
  count: number;
  sumSeconds: number;
  /** Requests per bucket of LATENCY_BOUNDS_SECONDS, and one more for the rest. */
  buckets: number[];
}

/**
 * What every FUSE request of the node cost and how it ended, counted in shared memory: by the
 * serving thread that answered it, or by the main thread for the requests it took over. Counters
 * are 64-bit, so they do not wrap in a node's lifetime.
 */
export class RequestStats {
  private readonly slots: BigInt64Array;

  constructor(readonly memory = new SharedArrayBuffer(SLOTS * 8)) {
    this.slots = new BigInt64Array(memory);
  }

  /** One answered request: its opcode, how long it took, and the errno of its reply (0: success). */
  record(op: number, micros: number, errno: number): void {
    const slot = op < REQUEST_COUNT_SLOTS ? op : 0;
    const at = slot * OP_STRIDE;
    Atomics.add(this.slots, at, 1n);
    Atomics.add(this.slots, at + 1, BigInt(Math.round(micros)));
    let bucket = 0;
    while (bucket < BOUNDS_US.length && micros > BOUNDS_US[bucket]) bucket++;
    Atomics.add(this.slots, at + 2 + bucket, 1n);
    if (errno > 0) Atomics.add(this.slots, ERRORS_AT + slot * ERRNO_SLOTS + Math.min(errno, ERRNO_SLOTS - 1), 1n);
  }

  /** A READ of a file: answered from the cache, or sent to wait for its blob. */
  recordRead(hit: boolean): void {
    Atomics.add(this.slots, hit ? READ_HITS : READ_MISSES, 1n);
  }

  /** File READs answered from the cache, and those that waited for their blob. */
  reads(): { hits: number; misses: number } {
    return { hits: Number(Atomics.load(this.slots, READ_HITS)), misses: Number(Atomics.load(this.slots, READ_MISSES)) };
  }

  /** Every operation seen so far. */
  operations(): OperationStats[] {
    const seen: OperationStats[] = [];
    for (let op = 0; op < REQUEST_COUNT_SLOTS; op++) {
      const at = op * OP_STRIDE;
      const count = Number(Atomics.load(this.slots, at));
      if (count === 0) continue;
      const buckets = Array.from({ length: BOUNDS_US.length + 1 }, (_, i) => Number(Atomics.load(this.slots, at + 2 + i)));
      seen.push({ op: opName(op), count, sumSeconds: Number(Atomics.load(this.slots, at + 1)) / 1e6, buckets });
    }
    return seen;
  }

  /** Error replies so far, by operation and errno name. */
  errors(): Array<{ op: string; errno: string; count: number }> {
    const seen: Array<{ op: string; errno: string; count: number }> = [];
    for (let op = 0; op < REQUEST_COUNT_SLOTS; op++) {
      for (let errno = 1; errno < ERRNO_SLOTS; errno++) {
        const count = Number(Atomics.load(this.slots, ERRORS_AT + op * ERRNO_SLOTS + errno));
        if (count > 0) seen.push({ op: opName(op), errno: ERRNO_NAMES.get(errno) ?? String(errno), count });
      }
    }
    return seen;
  }
}

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fuseDevice } from '../fuse/fuseDevice';

type Gc = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;
let gc: Gc | undefined;

/**
 * V8's most thorough collection (the one it runs before giving up on memory: every weak reference
 * cleared, pages compacted and unmapped), for when the node holds no commit any more: the heap V8
 * grew to while busy goes back to the system instead of staying until the next burst
 * (docs/benchmarks.md, the soak).
 */
export function collectWhenIdle(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as Gc;
  }
  gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  fuseDevice().trimMemory();
}

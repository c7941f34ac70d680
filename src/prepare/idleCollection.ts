import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fuseDevice } from '../fuse/fuseDevice';

let gc: (() => void) | undefined;

/**
 * A full garbage collection, for when the node holds no commit any more: the heap V8 grew to while
 * busy goes back to the system instead of staying until the next burst (docs/benchmarks.md, the soak).
 */
export function collectWhenIdle(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as () => void;
  }
  gc();
  fuseDevice().trimMemory();
}

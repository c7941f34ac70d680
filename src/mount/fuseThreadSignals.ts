import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { GitfsError } from '../errors/errors';

/**
 * Keeps every signal off libfuse's threads.
 *
 * libuv's signal handler takes a process-wide lock: one byte in a pipe, read to lock and written
 * back to unlock. A process-directed signal such as SIGCHLD runs that handler on any thread that
 * does not block it, and libfuse's worker threads block only SIGTERM, SIGINT, SIGHUP and SIGQUIT.
 * When a mount ends, libfuse cancels its workers; a worker cancelled inside the handler (between
 * its read and its write, both cancellation points) takes the byte with it. The main thread's next
 * spawn or signal registration then blocks forever reading that pipe, and every mount this
 * process serves stops answering. Unmounts spawn `fusermount`, so a child's SIGCHLD arriving while
 * the workers are cancelled is exactly what a burst of unpublishes produces.
 *
 * A thread starts with its creator's signal mask. fuse-native's synchronous mount call creates
 * the FUSE thread, which creates the workers, so running that one call with every signal blocked
 * leaves all of them blocked; the main thread's mask is restored straight after.
 */
export function keepSignalsOffFuseThreads(): void {
  if (installed) return;
  const { withSignalsBlocked } = native();
  const binding = fuseNativeBinding();
  const mount = binding.fuse_native_mount;
  binding.fuse_native_mount = (...args: unknown[]) => withSignalsBlocked(() => mount(...args));
  installed = true;
}

let installed = false;

interface FuseNativeBinding {
  fuse_native_mount: (...args: unknown[]) => unknown;
}

/** The very binding object fuse-native uses: loaded the way it loads it, so the module cache hands back the same one. */
function fuseNativeBinding(): FuseNativeBinding {
  const fuseNativeDir = dirname(require.resolve('fuse-native/package.json'));
  const requireAsFuseNative = createRequire(join(fuseNativeDir, 'index.js'));
  const load = requireAsFuseNative('node-gyp-build') as (dir: string) => FuseNativeBinding;
  return load(fuseNativeDir);
}

interface ThreadSignals {
  withSignalsBlocked<T>(fn: () => T): T;
}

function native(): ThreadSignals {
  const path = join(__dirname, '../../native/threadSignals.node');
  try {
    return require(path) as ThreadSignals;
  } catch (err) {
    throw new GitfsError('internal', `the native helper ${path} is missing or cannot load (build it with native/build.sh): ${(err as Error).message}`, { cause: err });
  }
}

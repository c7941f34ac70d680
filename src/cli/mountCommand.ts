import { rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nodeConfig, DEFAULT_CACHE_MAX_BYTES } from '../config/nodeConfig';
import { DEFAULT_FILESYSTEM_OPTIONS } from '../fuse/treeFilesystem';
import { GitfsError, InvalidArgument } from '../errors/errors';
import { createLogger } from '../log/logger';
import { NodeMachinery } from '../prepare/nodeMachinery';
import { formatBytes, parseByteSize } from './byteSize';
import { integerOption } from './integerOption';
import { ProgressLine } from './progressLine';
import { untilSignal } from './untilSignal';

export const MOUNT_USAGE = `usage: gitfs-csi mount <repository> <mountpoint> [options]

Mounts a commit of a git repository read-only at <mountpoint>, in the foreground.
File contents are fetched on first read. Ctrl-C (SIGINT) or SIGTERM unmounts.

options:
  --ref <branch|tag|commit>   what to mount (default: the remote's HEAD)
  --depth <N>                 history depth to fetch (default 1; 0 = full history)
  --cache-dir <dir>           repository stores and blob cache (default /var/cache/gitfs-csi)
  --cache-max-bytes <size>    blob cache budget, e.g. 10G (default ${formatBytes(DEFAULT_CACHE_MAX_BYTES)})
  --state-dir <dir>           where tree mounts live (default /run/gitfs-csi/mount-<pid>)
  --ready-wait-ms <ms>        longest a file operation waits for the tree to be ready (default ${DEFAULT_FILESYSTEM_OPTIONS.gateWaitMs})
  --read-wait-ms <ms>         longest an open waits for a file's content to arrive (default ${DEFAULT_FILESYSTEM_OPTIONS.readWaitMs})
  --allow-file                allow file:// repositories (tests and demos)
  --log-level <level>         pino level (default: info, or warn on a terminal)`;

/** `gitfs-csi mount`: returns the process exit code. */
export async function mountCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ref: { type: 'string' },
      depth: { type: 'string' },
      'cache-dir': { type: 'string' },
      'cache-max-bytes': { type: 'string' },
      'state-dir': { type: 'string' },
      'ready-wait-ms': { type: 'string' },
      'read-wait-ms': { type: 'string' },
      'allow-file': { type: 'boolean' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${MOUNT_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 2) throw new InvalidArgument('arguments', `expected <repository> <mountpoint>, got ${positionals.length} argument(s)\n\n${MOUNT_USAGE}`);
  const [repository, mountpoint] = positionals;
  const depth = integerOption(values.depth, '--depth', 1, true);
  const gateWaitMs = integerOption(values['ready-wait-ms'], '--ready-wait-ms', DEFAULT_FILESYSTEM_OPTIONS.gateWaitMs);
  const readWaitMs = integerOption(values['read-wait-ms'], '--read-wait-ms', DEFAULT_FILESYSTEM_OPTIONS.readWaitMs);
  const progress = new ProgressLine();
  const log = createLogger({ level: values['log-level'] ?? (progress.enabled ? 'warn' : 'info') });
  const config = nodeConfig({
    stateDir: values['state-dir'] ?? join('/run/gitfs-csi', `mount-${process.pid}`),
    cacheDir: values['cache-dir'] ?? '/var/cache/gitfs-csi',
    cacheMaxBytes: values['cache-max-bytes'] ? parseByteSize(values['cache-max-bytes'], '--cache-max-bytes') : DEFAULT_CACHE_MAX_BYTES,
    allowFile: values['allow-file'] ?? false,
    treeMountGraceMs: 0,
    filesystem: { ...DEFAULT_FILESYSTEM_OPTIONS, gateWaitMs, readWaitMs },
  });

  const node = await NodeMachinery.open(config, log);
  const { publisher } = node;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      progress.finish();
      await publisher.unpublish(mountpoint);
      await node.close();
      if (!values['state-dir']) await rmdir(config.stateDir).catch(() => undefined);
      const stats = node.hydrator.stats();
      process.stderr.write(`unmounted ${mountpoint}: ${stats.blobsHydrated} blobs (${formatBytes(stats.bytesHydrated)}) hydrated in ${stats.fetchBatches} fetches\n`);
    })());

  // Signals are caught from the start: one arriving while publish is still binding the mount waits for it, then unmounts.
  const finished = untilSignal().then(() => publishing.catch(() => undefined)).then(stop).then(() => 0);
  progress.say(`resolving ${repository} ${values.ref ?? 'HEAD'} …`);
  const publishing = publisher.publish({ repository, ref: values.ref, depth: depth === 0 ? undefined : depth, target: mountpoint });
  const published = await publishing;
  const { preparation, resolved } = published;
  progress.say(`mounted at ${mountpoint} (${resolved.refName} = ${resolved.commit.slice(0, 12)}); preparing …`);
  preparation.on('phase', (phase: string, detail: Record<string, unknown>) => {
    if (phase === 'failed') progress.say(`preparation failed: ${String(detail.reason)}`);
    else progress.say(`  ${phase}${detail.entries !== undefined ? ` (${detail.entries} entries)` : ''}`);
  });
  try {
    // A signal during preparation ends the wait too: the mount is already gone.
    const ready = await Promise.race([preparation.gate.wait(config.fetchTimeoutMs).then(() => true), finished.then(() => false)]);
    if (!ready) return finished;
  } catch (err) {
    await stop();
    throw err;
  }
  // One machine-readable line on stdout: scripts wait for it.
  process.stdout.write(`ready ${mountpoint} ${resolved.commit}\n`);
  const ticker = progress.enabled ? setInterval(() => progress.update(node.hydrator.stats(), node.cache.stats().bytes), 250) : undefined;
  const code = await finished;
  clearInterval(ticker);
  return code;
}

export function describeFailure(err: unknown): string {
  if (err instanceof GitfsError) return `gitfs-csi: ${err.message}`;
  return `gitfs-csi: ${err instanceof Error ? err.message : String(err)}`;
}

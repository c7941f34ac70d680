import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { nodeConfig, DEFAULT_CACHE_MAX_BYTES } from '../config/nodeConfig';
import { DEFAULT_FILESYSTEM_OPTIONS } from '../fuse/treeFilesystem';
import { redact } from '../log/redact';
import { InvalidArgument } from '../errors/errors';
import { validateRef } from '../git/remoteRefs';
import { RemoteUrl } from '../git/remoteUrl';
import { createLogger } from '../log/logger';
import { checkMountpoint } from '../mount/mountpoint';
import { MOUNTS_AS_USER } from '../mount/treeMount';
import { checkWriteLimit, DEFAULT_WRITE_LIMIT_BYTES } from '../mount/writableLayer';
import { NodeMachinery } from '../prepare/nodeMachinery';
import { Published } from '../prepare/publisher';
import { formatBytes, parseByteSize } from '../config/byteSize';
import { integerOption } from './integerOption';
import { REFUSE_CIDR_USAGE, REMOTE_POLICY_FLAGS, REMOTE_POLICY_USAGE, remotePolicyOption } from './remotePolicyOptions';
import { ProgressLine } from './progressLine';
import { defaultCacheDir, detachNow, makeDir, openStateDir, StateDir } from './mountDirs';
import { StopSignals } from './stopSignals';

export const MOUNT_USAGE = `usage: gitfs-csi mount <repository> <mountpoint> [options]

Mounts a commit of a git repository read-only (or, with --writable, writable) at <mountpoint> (an
existing, empty directory), in the foreground. File contents are fetched on first read. Ctrl-C (SIGINT) or SIGTERM unmounts; a
second one while unmounting is only reported, a third detaches the mount at once.
As root it mounts with mount(2); as any other user, through fusermount3 (fuse3), visible to that
user only.

options:
  --ref <branch|tag|commit>   what to mount (default: the remote's HEAD)
  --depth <N>                 history depth to fetch (default 1; 0 = full history)
  --cache-dir <dir>           repository stores and blob cache, kept for later mounts (default
                              /var/cache/gitfs-csi as root, else $XDG_CACHE_HOME/gitfs-csi or ~/.cache/gitfs-csi)
  --cache-max-bytes <size>    blob cache budget, e.g. 10G (default ${formatBytes(DEFAULT_CACHE_MAX_BYTES)})
  --state-dir <dir>           this mount's state, removed when it ends (default /run/gitfs-csi/mount-<pid> as root,
                              else $XDG_RUNTIME_DIR/gitfs-csi/mount-<pid> or a private directory under $TMPDIR)
  --ready-wait-ms <ms>        longest a file operation waits for the tree to be ready (default ${DEFAULT_FILESYSTEM_OPTIONS.gateWaitMs})
  --read-wait-ms <ms>         longest an open waits for a file's content to arrive (default ${DEFAULT_FILESYSTEM_OPTIONS.readWaitMs})
  --writable                  writes go to a layer of this mount's own (root only: kernel overlayfs), deleted
                              when it unmounts; files never written are still fetched on first read
  --write-limit <size>        the most bytes a --writable mount takes on disk, under --cache-dir (default ${formatBytes(DEFAULT_WRITE_LIMIT_BYTES)})
  --no-git                    no .git in the mount (by default git log, status, diff … work in it, offline)
${REMOTE_POLICY_USAGE}${REFUSE_CIDR_USAGE}  --allow-file                allow file:// repositories (tests and demos)
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
      writable: { type: 'boolean' },
      'write-limit': { type: 'string' },
      'no-git': { type: 'boolean' },
      'allow-file': { type: 'boolean' },
      ...REMOTE_POLICY_FLAGS,
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${MOUNT_USAGE}\n`);
    return 0;
  }
  if (positionals.length !== 2) throw new InvalidArgument('arguments', `expected <repository> <mountpoint>, got ${positionals.length} argument(s)\n\n${MOUNT_USAGE}`);
  const [repository] = positionals;
  const depth = integerOption(values.depth, '--depth', 1, true);
  const gateWaitMs = integerOption(values['ready-wait-ms'], '--ready-wait-ms', DEFAULT_FILESYSTEM_OPTIONS.gateWaitMs);
  const readWaitMs = integerOption(values['read-wait-ms'], '--read-wait-ms', DEFAULT_FILESYSTEM_OPTIONS.readWaitMs);
  const cacheMaxBytes = values['cache-max-bytes'] ? parseByteSize(values['cache-max-bytes'], '--cache-max-bytes') : DEFAULT_CACHE_MAX_BYTES;
  if (values['write-limit'] !== undefined && !values.writable) throw new InvalidArgument('--write-limit', 'applies to --writable mounts only');
  const writeLimitBytes = values['write-limit'] ? parseByteSize(values['write-limit'], '--write-limit') : DEFAULT_WRITE_LIMIT_BYTES;
  const writable = values.writable ? { limitBytes: checkWriteLimit(writeLimitBytes, '--write-limit') } : undefined;
  if (writable && MOUNTS_AS_USER) throw new InvalidArgument('--writable', 'needs root: a writable layer is a kernel overlayfs mount');
  // Bad arguments come out first (exit 2); the publish checks them again, as it does for every caller.
  RemoteUrl.parse(repository, { allowFile: values['allow-file'] ?? false });
  // Any remote, unless the same flags as a node plugin's are given.
  const remotePolicy = remotePolicyOption(values, undefined);
  validateRef(values.ref ?? 'HEAD');
  // Before anything is created or fetched: another mount there is never taken over.
  const mountpoint = await checkMountpoint(positionals[1]);
  const progress = new ProgressLine();
  const log = createLogger({ level: values['log-level'] ?? (progress.enabled ? 'warn' : 'info') });
  let stateDir: StateDir | undefined;
  const signals = new StopSignals((count) => {
    if (count === 2) process.stderr.write(`gitfs-csi: still unmounting ${mountpoint}; a third signal detaches it at once\n`);
    // Lazily, so a busy mount goes too; the cleanup still runs to its end.
    else void detachNow(mountpoint, stateDir?.dir).then(() => process.stderr.write(`gitfs-csi: detached ${mountpoint}\n`));
  });
  stateDir = await openStateDir(values['state-dir'], MOUNTS_AS_USER);
  try {
    const cacheDir = values['cache-dir'] ?? defaultCacheDir(MOUNTS_AS_USER);
    const config = nodeConfig({
      stateDir: stateDir.dir,
      // The state directory may be in memory (/run); a writable layer goes to disk, beside the cache.
      layersDir: join(cacheDir, 'layers'),
      cacheDir,
      cacheMaxBytes,
      allowFile: values['allow-file'] ?? false,
      remotePolicy,
      treeMountGraceMs: 0,
      filesystem: { ...DEFAULT_FILESYSTEM_OPTIONS, gateWaitMs, readWaitMs },
    });
    await makeDir(config.cacheDir, 'the cache directory (--cache-dir)');
    return await serveUntilStopped(await NodeMachinery.open(config, log), { repository, ref: values.ref, depth, mountpoint, writable, git: !values['no-git'] }, signals, progress);
  } finally {
    await stateDir.remove();
  }
}

interface MountRequest {
  repository: string;
  ref?: string;
  depth: number;
  mountpoint: string;
  writable?: { limitBytes: number };
  git: boolean;
}

/** Publishes, waits for ready, serves until a signal; then unmounts and closes, whatever happened before. */
async function serveUntilStopped(node: NodeMachinery, request: MountRequest, signals: StopSignals, progress: ProgressLine): Promise<number> {
  const { mountpoint } = request;
  const { publisher } = node;
  let published: Published | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let outcome: { code: number } | { error: unknown };
  try {
    progress.say(`resolving ${redact(request.repository)} ${request.ref ?? '(its default branch)'} …`);
    // A signal while publishing waits for it (it may be binding the mount); the cleanup then takes it down.
    published = await publisher.publish({ repository: request.repository, ref: request.ref, depth: request.depth === 0 ? undefined : request.depth, target: mountpoint, writable: request.writable, git: request.git });
    const { preparation, resolved } = published;
    progress.say(`mounted at ${mountpoint} (${resolved.refName} = ${resolved.commit.slice(0, 12)}); preparing …`);
    // Each phase as it ends, with its duration (the gate's opening itself takes none).
    let phase: string = preparation.phase;
    let since = Date.now();
    preparation.on('phase', (next: string, detail: Record<string, unknown>) => {
      if (next === 'failed') return progress.say(`preparation failed while ${phase}: ${String(detail.reason)}`);
      const entries = typeof detail.entries === 'number' ? ` (${detail.entries.toLocaleString('en-US')} entries)` : '';
      if (phase !== 'ready') progress.say(`  ${phase}: ${Date.now() - since} ms${entries}`);
      [phase, since] = [next, Date.now()];
    });
    const ready = !signals.received && (await Promise.race([preparation.gate.wait(node.config.fetchTimeoutMs).then(() => true), signals.first.then(() => false)]));
    // A signal that came while preparing means no ready line, even if the gate opened in the same turn.
    if (ready && !signals.received) {
      // One machine-readable line on stdout: scripts wait for it.
      process.stdout.write(`ready ${mountpoint} ${resolved.commit}\n`);
      ticker = progress.enabled ? setInterval(() => progress.update(node.hydrator.stats(), node.cache.stats().bytes), 250) : undefined;
      await signals.first;
    }
    outcome = { code: 0 };
  } catch (error) {
    outcome = { error };
  }
  clearInterval(ticker);
  progress.finish();
  try {
    await publisher.unpublish(mountpoint);
    await node.close();
  } catch (error) {
    // The first failure is the one to report; a cleanup failure after success is one too.
    if ('code' in outcome) outcome = { error };
  }
  if (published) {
    const stats = node.hydrator.stats();
    process.stderr.write(`unmounted ${mountpoint}: ${stats.blobsHydrated} blobs (${formatBytes(stats.bytesHydrated)}) hydrated in ${stats.fetchBatches} fetches\n`);
  }
  if ('error' in outcome) throw outcome.error;
  return outcome.code;
}

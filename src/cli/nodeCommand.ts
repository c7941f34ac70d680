import { constants } from 'node:fs';
import { readFileSync } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_CACHE_MAX_BYTES, DEFAULT_TREE_LIMITS, nodeConfig } from '../config/nodeConfig';
import { DEFAULT_LIMITS } from '../hydrate/hydrator';
import { controllerService } from '../csi/controllerService';
import { socketPathOf, startCsiServer } from '../csi/csiServer';
import { identityService } from '../csi/identityService';
import { nodeService } from '../csi/nodeService';
import { startHealthEndpoint } from '../csi/healthEndpoint';
import { startKubeletRegistration } from '../csi/kubeletRegistration';
import { parseListenAddress, startMetricsEndpoint } from '../metrics/metricsEndpoint';
import { NodeMetrics } from '../metrics/nodeMetrics';
import { InvalidArgument } from '../errors/errors';
import { createLogger, Logger } from '../log/logger';
import { fuseHolderFor, HolderMode } from '../mount/fuseHolderProcess';
import { DEFAULT_WRITE_LIMIT_BYTES } from '../mount/writableLayer';
import { KernelProfile, LINUX_5_10 } from '../fuse/initNegotiation';
import { NodeMachinery } from '../prepare/nodeMachinery';
import { NodeVolumes } from '../volume/nodeVolumes';
import { VolumeEvents } from '../volume/volumeEvents';
import { VolumeRecords } from '../volume/volumeRecords';
import { EventRecorder } from '../kube/eventRecorder';
import { nodeStatus } from '../status/nodeStatus';
import { serveStatus, STATUS_SOCKET } from '../status/statusSocket';
import { formatBytes, parseByteSize } from '../config/byteSize';
import { DEFAULT_DRIVER_NAME, DEFAULT_ENDPOINT, PACKAGE_VERSION } from './driverDefaults';
import { integerOption } from './integerOption';
import { REFUSE_CIDR_USAGE, REMOTE_POLICY_FLAGS, REMOTE_POLICY_USAGE, remotePolicyOption } from './remotePolicyOptions';
import { RemotePolicy } from '../git/remotePolicy';
import { untilSignal } from './untilSignal';

export const NODE_USAGE = `usage: gitfs-csi node [options]

Serves the CSI Identity and Node services (and Controller with --controller) on a unix socket.

options:
  --endpoint <unix:///path>   CSI socket (default ${DEFAULT_ENDPOINT})
  --node-id <id>              this node's id (default: the host name)
  --state-dir <dir>           published volumes and tree mounts (default /var/lib/gitfs-csi)
  --cache-dir <dir>           repository stores and blob cache (default /var/cache/gitfs-csi)
  --cache-max-bytes <size>    blob cache budget, e.g. 10G (default ${formatBytes(DEFAULT_CACHE_MAX_BYTES)})
  --publish-wait-ms <ms>      longest a "readiness: wait" publish takes, access probe included, before answering ABORTED (default 90000)
  --tree-grace-ms <ms>        how long an unused tree mount stays mounted (default 60000)
  --write-limit <size>        a writable volume's most bytes of writes when it names no writeLimit (default ${formatBytes(DEFAULT_WRITE_LIMIT_BYTES)});
                              allocated on this node's disk under --state-dir while the volume is published
  --max-write-limit <size>    the largest writeLimit a volume may name (default 10Gi)
  --max-tree-entries <n>      the most entries a mounted commit's tree may have; a volume may name less
                              (maxTreeEntries) (default ${DEFAULT_TREE_LIMITS.maxEntries})
  --max-commit-bytes <size>   the most bytes a mounted commit's files may hold together; a volume may name
                              less (maxCommitBytes); a publish checking it waits for the tree's sizes (default: none)
  --max-blob-bytes <size>     the largest file fetched and served; larger ones read as EFBIG (default: none)
  --controller                also serve the Controller service (csi-sanity, single-socket setups)
  --registration-dir <dir>    register with kubelet through its plugins_registry directory (instead of
                              the node-driver-registrar sidecar); needs --kubelet-registration-path
  --kubelet-registration-path <path>  the CSI socket's path on the host, as kubelet sees it
  --health-port <port>        serve GET /healthz (instead of the livenessprobe sidecar)
  --metrics-address <addr>    serve Prometheus metrics at GET /metrics on host:port or :port (default: off)
  --fuse-holder <mode>        what keeps the FUSE mounts alive while no plugin serves them (a crash, a
                              restart, an upgrade): spawn (default: start a gitfs-csi fuse-holder process
                              when none answers), external (one runs beside the plugin, as the Helm chart
                              does), none (mounts end with the plugin)
  --fuse-holder-socket <path> where the holder answers (default <state-dir>/fuse-holder.sock)
  --fuse-kernel-profile <v>   negotiate FUSE as if the kernel were Linux 5.10 (5.10): none of the newer
                              features (resend after a crash, passthrough), whatever this kernel offers
  --driver-name <name>        CSI driver name (default ${DEFAULT_DRIVER_NAME})
${REMOTE_POLICY_USAGE.trimEnd()} (default: *)
${REFUSE_CIDR_USAGE.trimEnd()}
  --allow-file                allow file:// repositories (tests and demos)
  --log-level <level>         pino level (default info)`;

/** `gitfs-csi node`: runs until SIGINT/SIGTERM; returns the exit code. */
export async function nodeCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      endpoint: { type: 'string' },
      'node-id': { type: 'string' },
      'state-dir': { type: 'string' },
      'cache-dir': { type: 'string' },
      'cache-max-bytes': { type: 'string' },
      'publish-wait-ms': { type: 'string' },
      'tree-grace-ms': { type: 'string' },
      'write-limit': { type: 'string' },
      'max-write-limit': { type: 'string' },
      'max-tree-entries': { type: 'string' },
      'max-commit-bytes': { type: 'string' },
      'max-blob-bytes': { type: 'string' },
      controller: { type: 'boolean' },
      'registration-dir': { type: 'string' },
      'kubelet-registration-path': { type: 'string' },
      'health-port': { type: 'string' },
      'metrics-address': { type: 'string' },
      'driver-name': { type: 'string' },
      'fuse-holder': { type: 'string' },
      'fuse-holder-socket': { type: 'string' },
      'fuse-kernel-profile': { type: 'string' },
      'allow-file': { type: 'boolean' },
      ...REMOTE_POLICY_FLAGS,
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${NODE_USAGE}\n`);
    return 0;
  }
  const holderMode = values['fuse-holder'] ?? 'spawn';
  if (!isHolderMode(holderMode)) throw new InvalidArgument('--fuse-holder', `"${holderMode}" is not one of spawn, external, none`);
  const stateDir = values['state-dir'] ?? '/var/lib/gitfs-csi';
  const config = nodeConfig({
    stateDir,
    cacheDir: values['cache-dir'] ?? '/var/cache/gitfs-csi',
    cacheMaxBytes: values['cache-max-bytes'] ? parseByteSize(values['cache-max-bytes'], '--cache-max-bytes') : DEFAULT_CACHE_MAX_BYTES,
    allowFile: values['allow-file'] ?? false,
    remotePolicy: remotePolicyOption(values, RemotePolicy.DEFAULT_PATTERNS),
    treeLimits: {
      maxEntries: integerOption(values['max-tree-entries'], '--max-tree-entries', DEFAULT_TREE_LIMITS.maxEntries),
      maxBytes: values['max-commit-bytes'] === undefined ? undefined : parseByteSize(values['max-commit-bytes'], '--max-commit-bytes'),
    },
    hydrator: { ...DEFAULT_LIMITS, maxBlobBytes: values['max-blob-bytes'] === undefined ? undefined : parseByteSize(values['max-blob-bytes'], '--max-blob-bytes') },
    treeMountGraceMs: integerOption(values['tree-grace-ms'], '--tree-grace-ms', 60_000, true),
    kernelProfile: kernelProfileOption(values['fuse-kernel-profile']),
  });
  const publishWaitMs = integerOption(values['publish-wait-ms'], '--publish-wait-ms', 90_000);
  const writeLimit = {
    defaultBytes: values['write-limit'] ? parseByteSize(values['write-limit'], '--write-limit') : DEFAULT_WRITE_LIMIT_BYTES,
    maxBytes: parseByteSize(values['max-write-limit'] ?? '10Gi', '--max-write-limit'),
  };
  if (writeLimit.defaultBytes > writeLimit.maxBytes) throw new InvalidArgument('--write-limit', `${formatBytes(writeLimit.defaultBytes)} is over --max-write-limit (${formatBytes(writeLimit.maxBytes)})`);
  const endpoint = values.endpoint ?? DEFAULT_ENDPOINT;
  socketPathOf(endpoint);
  const healthPort = values['health-port'] === undefined ? undefined : integerOption(values['health-port'], '--health-port', 0);
  const metricsAddress = values['metrics-address'] === undefined ? undefined : parseListenAddress(values['metrics-address'], '--metrics-address');
  const registrationDir = values['registration-dir'];
  const kubeletRegistrationPath = values['kubelet-registration-path'];
  if (registrationDir && !kubeletRegistrationPath?.startsWith('/')) {
    throw new InvalidArgument('--kubelet-registration-path', 'an absolute path is required with --registration-dir');
  }
  const nodeId = values['node-id'] ?? hostname();
  const driverName = values['driver-name'] ?? DEFAULT_DRIVER_NAME;
  const log = createLogger({ level: values['log-level'] });

  const stopped = untilSignal();
  warnAboutRequestTimeout(log);
  await mkdir(stateDir, { recursive: true });
  config.fuseHolder = await fuseHolderFor(holderMode, values['fuse-holder-socket'] ?? join(stateDir, 'fuse-holder.sock'));
  const nodeMetrics = new NodeMetrics();
  const node = await NodeMachinery.open(config, log, nodeMetrics);
  const records = await VolumeRecords.open(join(config.stateDir, 'volumes'));
  // In a cluster, pods are told how their volumes go (Events, with the plugin's service account).
  const recorder = await EventRecorder.inCluster({ component: 'gitfs-csi-node', host: nodeId }, log.child({ component: 'events' }));
  const events = new VolumeEvents(recorder);
  const { volumes, recovered } = await NodeVolumes.open(node, records, { publishWaitMs, writeLimit, events }, log.child({ component: 'volumes' }));
  node.publisher.keepSpareLayer(writeLimit.defaultBytes);
  const ready = async () => {
    const usable = (dir: string) => access(dir, constants.W_OK | constants.R_OK).then(() => true, () => false);
    return (await usable(config.stateDir)) && (await usable(config.cacheDir));
  };
  const csiLog = log.child({ component: 'csi' });
  const server = await startCsiServer(endpoint, {
    Identity: identityService({ driverName, version: PACKAGE_VERSION, controller: values.controller ?? false, ready }, csiLog),
    Node: nodeService(nodeId, volumes, csiLog, (method, code, seconds) => nodeMetrics.csiRequests.observe({ method, code }, seconds)),
    ...(values.controller ? { Controller: controllerService({ allowFile: config.allowFile }, csiLog) } : {}),
  });
  const registration = registrationDir
    ? await startKubeletRegistration({ driverName, registrationDir, kubeletRegistrationPath: kubeletRegistrationPath! }, csiLog)
    : undefined;
  const health = healthPort === undefined ? undefined : await startHealthEndpoint(healthPort, ready);
  const metrics = metricsAddress && (await startMetricsEndpoint(metricsAddress, nodeMetrics.registry));
  const status = await serveStatus(join(config.stateDir, STATUS_SOCKET), () => nodeStatus(node, volumes, PACKAGE_VERSION));
  log.info(
    { endpoint: server.socketPath, nodeId, driverName, version: PACKAGE_VERSION, controller: values.controller ?? false, volumes: volumes.count, podEvents: recorder !== undefined, metrics: values['metrics-address'], allowRemotes: config.remotePolicy?.description },
    'node plugin serving',
  );
  void recovered.then(() => log.info({ volumes: volumes.count }, 'volumes from before the restart re-mounted'));

  const signal = await stopped;
  log.info({ signal, mountsKept: config.fuseHolder !== undefined }, config.fuseHolder ? 'node plugin stopping; published volumes and their mounts stay for the next start' : 'node plugin stopping; published volumes stay recorded for the next start');
  await registration?.stop();
  health?.close();
  metrics?.close();
  status.close();
  await server.stop();
  await node.close({ keepPublications: true });
  return 0;
}

function kernelProfileOption(text: string | undefined): KernelProfile | undefined {
  if (text === undefined) return undefined;
  if (text !== '5.10') throw new InvalidArgument('--fuse-kernel-profile', `"${text}" is not a known profile (5.10)`);
  return LINUX_5_10;
}

function isHolderMode(mode: string): mode is HolderMode {
  return mode === 'spawn' || mode === 'external' || mode === 'none';
}

/**
 * A node whose kernel gives FUSE requests a default timeout aborts a whole mount when one request
 * runs over it (a slow fetch, or the gap while a successor takes over): say so at start.
 */
function warnAboutRequestTimeout(log: Logger): void {
  let seconds = 0;
  try {
    seconds = Number(readFileSync('/proc/sys/fs/fuse/default_request_timeout', 'utf8').trim());
  } catch {
    return; // a kernel without request timeouts
  }
  if (seconds > 0) log.warn({ seconds }, 'fs.fuse.default_request_timeout is set: a FUSE request unanswered for that long aborts its whole mount (a slow fetch, or a plugin restart, would end volumes); set it to 0');
}

import { join } from 'node:path';
import { RemotePolicy } from '../git/remotePolicy';
import { FilesystemOptions, DEFAULT_FILESYSTEM_OPTIONS } from '../fuse/treeFilesystem';
import { KernelProfile } from '../fuse/initNegotiation';
import { FuseHolder } from '../mount/fuseHolder';
import { DEFAULT_LIMITS, HydratorLimits } from '../hydrate/hydrator';

/** Everything a node needs to serve volumes; the CLI and the CSI driver fill it from flags. */
export interface NodeConfig {
  /** Published state and tree mount points. */
  stateDir: string;
  /** Writable volumes' layers: on disk (default <stateDir>/layers). */
  layersDir?: string;
  /** Repository stores and the blob cache. */
  cacheDir: string;
  /** Volumes' SSH keys while in use: in memory (tmpfs), private to this process. */
  secretsDir: string;
  cacheMaxBytes: number;
  /** Allow file:// remotes (tests and the demo only). */
  allowFile: boolean;
  /** Which remotes volumes may name and which addresses they may reach; none: any (a person's own mounts). */
  remotePolicy?: RemotePolicy;
  /** The largest commit a volume may mount here; a volume may ask for less (TreeLimits). */
  treeLimits: TreeLimits;
  commandTimeoutMs: number;
  fetchTimeoutMs: number;
  /** How long an idle tree mount stays mounted after its last consumer leaves. */
  treeMountGraceMs: number;
  hydrator: HydratorLimits;
  filesystem: FilesystemOptions;
  /** Negotiate FUSE as if the kernel were this old (tests). */
  kernelProfile?: KernelProfile;
  /** Keeps the FUSE connections open while no process of ours serves them (the node plugin). */
  fuseHolder?: FuseHolder;
}

export const DEFAULT_CACHE_MAX_BYTES = 10 * 1024 ** 3;

/** How large a commit may be to be mounted: its tree's entries, and the bytes of all its files (none: any). */
export interface TreeLimits {
  maxEntries: number;
  maxBytes?: number;
}

export const DEFAULT_TREE_LIMITS: TreeLimits = { maxEntries: 1_000_000 };

export function nodeConfig(overrides: Partial<NodeConfig> & Pick<NodeConfig, 'stateDir' | 'cacheDir'>): NodeConfig {
  return {
    cacheMaxBytes: DEFAULT_CACHE_MAX_BYTES,
    secretsDir: `/dev/shm/gitfs-csi-${process.pid}`,
    allowFile: false,
    treeLimits: DEFAULT_TREE_LIMITS,
    commandTimeoutMs: 30_000,
    fetchTimeoutMs: 10 * 60_000,
    treeMountGraceMs: 60_000,
    hydrator: DEFAULT_LIMITS,
    filesystem: DEFAULT_FILESYSTEM_OPTIONS,
    ...overrides,
  };
}

export const storesDirOf = (config: NodeConfig) => join(config.cacheDir, 'repositories');
export const blobsDirOf = (config: NodeConfig) => join(config.cacheDir, 'blobs');
export const treesDirOf = (config: NodeConfig) => join(config.stateDir, 'trees');
/** Writable volumes' layers (their writes), one directory per target. */
export const layersDirOf = (config: NodeConfig) => config.layersDir ?? join(config.stateDir, 'layers');
/** Each volume's own view of `.git` (its HEAD and ref), laid over its commit's tree. */
export const viewsDirOf = (config: NodeConfig) => join(config.stateDir, 'views');

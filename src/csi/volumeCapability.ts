import { InvalidArgument } from '../errors/errors';

/** A CSI VolumeCapability as grpc-js hands it over (enums as names, oneof named). */
export interface VolumeCapability {
  access_type?: 'mount' | 'block';
  mount?: { fs_type: string; mount_flags: string[] } | null;
  block?: object | null;
  access_mode?: { mode: string } | null;
}

const READER_MODES = new Set(['SINGLE_NODE_READER_ONLY', 'MULTI_NODE_READER_ONLY']);
const WRITER_MODES = new Set(['SINGLE_NODE_WRITER', 'SINGLE_NODE_SINGLE_WRITER', 'SINGLE_NODE_MULTI_WRITER', 'MULTI_NODE_SINGLE_WRITER', 'MULTI_NODE_MULTI_WRITER']);

/** Refuses what gitfs-csi cannot serve at all: block volumes and unknown access modes. */
export function checkCapability(capability: VolumeCapability | null | undefined, field: string): asserts capability is VolumeCapability {
  if (!capability) throw new InvalidArgument(field, 'is required');
  if (capability.access_type !== 'mount') throw new InvalidArgument(field, `access type "${capability.access_type ?? 'none'}" is not supported; gitfs-csi volumes are file systems (mount)`);
  const mode = capability.access_mode?.mode ?? 'UNKNOWN';
  if (!READER_MODES.has(mode) && !WRITER_MODES.has(mode)) throw new InvalidArgument(`${field}.access_mode`, `"${mode}" is not a known access mode`);
}

export function isReaderMode(capability: VolumeCapability): boolean {
  return READER_MODES.has(capability.access_mode?.mode ?? '');
}

/**
 * Whether a publish gets a writable layer: a writer mode without readonly. Multi-node writers are
 * refused: each node's writes stay on that node, and no other node would see them.
 */
export function isWritablePublish(capability: VolumeCapability, readonly: boolean, field: string): boolean {
  if (readonly || isReaderMode(capability)) return false;
  const mode = capability.access_mode?.mode ?? '';
  if (mode.startsWith('MULTI_NODE_')) {
    throw new InvalidArgument(`${field}.access_mode`, `${mode} without readonly is not supported: a volume's writes stay on the node that made them, so no other node would see them; use a SINGLE_NODE_* writer mode (ReadWriteOnce, ReadWriteOncePod) or readOnly: true`);
  }
  return true;
}

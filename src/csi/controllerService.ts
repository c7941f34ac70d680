import { createHash } from 'node:crypto';
import { UntypedServiceImplementation } from '@grpc/grpc-js';
import { AlreadyExists, InvalidArgument, VolumeNotFound } from '../errors/errors';
import { Logger } from '../log/logger';
import { parseVolumeSpec, VOLUME_ATTRIBUTE_KEYS } from '../volume/volumeSpec';
import { required } from './requestFields';
import { unary } from './unaryHandler';
import { checkCapability, isReaderMode, VolumeCapability } from './volumeCapability';

interface CreateVolumeRequest {
  name: string;
  capacity_range: { required_bytes: number; limit_bytes: number } | null;
  volume_capabilities: VolumeCapability[];
  parameters: Record<string, string>;
  volume_content_source: object | null;
  mutable_parameters: Record<string, string>;
}

interface ValidateVolumeCapabilitiesRequest {
  volume_id: string;
  volume_context: Record<string, string>;
  volume_capabilities: VolumeCapability[];
  parameters: Record<string, string>;
}

const VOLUME_ID = /^gitfs-[0-9a-f]{40}$/;
/** Names remembered to answer ALREADY_EXISTS for a name reused with other arguments. */
const REMEMBERED_NAMES = 10_000;

/** A deterministic id from the volume name: a retried CreateVolume gets the same volume. */
export function volumeIdOf(name: string): string {
  return `gitfs-${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

function checkCapabilities(given: VolumeCapability[] | undefined): VolumeCapability[] {
  const capabilities = required(given, 'volume_capabilities');
  capabilities.forEach((c, i) => checkCapability(c, `volume_capabilities[${i}]`));
  return capabilities;
}

/**
 * CSI Controller service. Stateless: a volume is its StorageClass parameters, carried in the
 * volume context to the node, so deleting one is a no-op. Names seen recently are remembered
 * only to refuse a name reused with other arguments.
 */
export function controllerService(options: { allowFile: boolean }, log: Logger): UntypedServiceImplementation {
  const argumentsByName = new Map<string, string>();
  return {
    ControllerGetCapabilities: unary('ControllerGetCapabilities', log, async () => ({ capabilities: [{ rpc: { type: 'CREATE_DELETE_VOLUME' } }] })),
    CreateVolume: unary('CreateVolume', log, async (request: CreateVolumeRequest) => {
      required(request.name, 'name');
      checkCapabilities(request.volume_capabilities);
      if (request.volume_content_source) throw new InvalidArgument('volume_content_source', 'is not supported: a volume is a commit of a repository');
      if (Object.keys(request.mutable_parameters ?? {}).length > 0) throw new InvalidArgument('mutable_parameters', 'are not supported');
      const parameters = request.parameters ?? {};
      parseVolumeSpec(parameters, { allowFile: options.allowFile, where: 'parameters' });
      const context = Object.fromEntries(Object.entries(parameters).filter(([key]) => VOLUME_ATTRIBUTE_KEYS.has(key)));
      const digest = JSON.stringify([Object.entries(context).sort(), request.capacity_range ?? null]);
      const previous = argumentsByName.get(request.name);
      if (previous !== undefined && previous !== digest) throw new AlreadyExists(`volume "${request.name}" already exists with other parameters or capacity`);
      argumentsByName.delete(request.name);
      argumentsByName.set(request.name, digest);
      if (argumentsByName.size > REMEMBERED_NAMES) argumentsByName.delete(argumentsByName.keys().next().value!);
      const volumeId = volumeIdOf(request.name);
      log.info({ name: request.name, volumeId, repository: context.repository }, 'volume created');
      return { volume: { volume_id: volumeId, capacity_bytes: 0, volume_context: context } };
    }),
    DeleteVolume: unary('DeleteVolume', log, async (request: { volume_id: string }) => {
      required(request.volume_id, 'volume_id');
      return {};
    }),
    ValidateVolumeCapabilities: unary('ValidateVolumeCapabilities', log, async (request: ValidateVolumeCapabilitiesRequest) => {
      required(request.volume_id, 'volume_id');
      const capabilities = checkCapabilities(request.volume_capabilities);
      if (!VOLUME_ID.test(request.volume_id)) throw new VolumeNotFound(`volume ${request.volume_id.slice(0, 128)} was not created by gitfs-csi`);
      if (Object.keys(request.volume_context ?? {}).length > 0) parseVolumeSpec(request.volume_context, { allowFile: options.allowFile, where: 'volume_context' });
      const multiNodeWriter = capabilities.find((c) => !isReaderMode(c) && c.access_mode?.mode.startsWith('MULTI_NODE_'));
      if (multiNodeWriter) return { message: `${multiNodeWriter.access_mode!.mode} is served only when published readonly: a volume's writes stay on the node that made them` };
      return { confirmed: { volume_context: request.volume_context ?? {}, volume_capabilities: capabilities, parameters: request.parameters ?? {} } };
    }),
  };
}

import { UntypedServiceImplementation } from '@grpc/grpc-js';
import { Logger } from '../log/logger';
import { NodeVolumes } from '../volume/nodeVolumes';
import { absolutePath, required } from './requestFields';
import { CallObserver, unary } from './unaryHandler';
import { checkCapability, isWritablePublish, VolumeCapability } from './volumeCapability';

interface NodePublishVolumeRequest {
  volume_id: string;
  target_path: string;
  volume_capability: VolumeCapability | null;
  readonly: boolean;
  secrets: Record<string, string>;
  volume_context: Record<string, string>;
}

interface VolumePathRequest {
  volume_id: string;
  target_path?: string;
  volume_path?: string;
}

/** CSI Node service: arguments are checked before any volume is looked up. */
export function nodeService(nodeId: string, volumes: NodeVolumes, log: Logger, observe?: CallObserver): UntypedServiceImplementation {
  const options = { observe };
  return {
    NodeGetCapabilities: unary('NodeGetCapabilities', log, async () => ({
      capabilities: [{ rpc: { type: 'GET_VOLUME_STATS' } }, { rpc: { type: 'VOLUME_CONDITION' } }],
    }), options),
    NodeGetInfo: unary('NodeGetInfo', log, async () => ({ node_id: nodeId, max_volumes_per_node: 0 }), options),
    NodePublishVolume: unary('NodePublishVolume', log, async (request: NodePublishVolumeRequest) => {
      const volumeId = required(request.volume_id, 'volume_id');
      const target = absolutePath(request.target_path, 'target_path');
      const capability = request.volume_capability;
      checkCapability(capability, 'volume_capability');
      const writable = isWritablePublish(capability, request.readonly, 'volume_capability');
      await volumes.publish({
        volumeId, target, accessMode: capability.access_mode!.mode, readonly: request.readonly, writable,
        attributes: request.volume_context ?? {}, secrets: request.secrets ?? {},
      });
      return {};
    }, options),
    NodeUnpublishVolume: unary('NodeUnpublishVolume', log, async (request: VolumePathRequest) => {
      const volumeId = required(request.volume_id, 'volume_id');
      await volumes.unpublish(volumeId, absolutePath(request.target_path, 'target_path'));
      return {};
    }, options),
    NodeGetVolumeStats: unary('NodeGetVolumeStats', log, async (request: VolumePathRequest) => {
      const volumeId = required(request.volume_id, 'volume_id');
      const stats = await volumes.stats(volumeId, required(request.volume_path, 'volume_path'));
      return {
        usage: [
          { unit: 'BYTES', total: stats.totalBytes, used: stats.usedBytes, available: Math.max(0, stats.totalBytes - stats.usedBytes) },
          { unit: 'INODES', total: stats.entries, used: stats.entries, available: 0 },
        ],
        volume_condition: { abnormal: stats.abnormal !== undefined, message: stats.abnormal ?? 'ok' },
      };
    }, options),
  };
}

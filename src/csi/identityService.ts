import { UntypedServiceImplementation } from '@grpc/grpc-js';
import { Logger } from '../log/logger';
import { unary } from './unaryHandler';

export interface PluginInfo {
  driverName: string;
  version: string;
  /** Whether this server also answers the Controller service. */
  controller: boolean;
  /** Ready once the state and cache directories are usable. */
  ready: () => Promise<boolean>;
}

export function identityService(info: PluginInfo, log: Logger): UntypedServiceImplementation {
  return {
    GetPluginInfo: unary('GetPluginInfo', log, async () => ({ name: info.driverName, vendor_version: info.version, manifest: {} })),
    GetPluginCapabilities: unary('GetPluginCapabilities', log, async () => ({
      capabilities: info.controller ? [{ service: { type: 'CONTROLLER_SERVICE' } }] : [],
    })),
    Probe: unary('Probe', log, async () => ({ ready: { value: await info.ready() } })),
  };
}

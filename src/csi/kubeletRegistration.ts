import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Logger } from '../log/logger';
import { loadProto } from './csiProto';
import { unary } from './unaryHandler';
import { UnixSocketServer } from './unixSocketServer';

export interface KubeletRegistrationOptions {
  driverName: string;
  /** kubelet's plugins_registry directory (as this process sees it). */
  registrationDir: string;
  /** The CSI socket's path as kubelet sees it on the host. */
  kubeletRegistrationPath: string;
}

/**
 * Registers the node plugin with kubelet itself — what node-driver-registrar does as a sidecar:
 * a socket in kubelet's plugins_registry answering the plugin registration API with the driver's
 * name and CSI endpoint. Removing the socket (stop) unregisters the driver.
 */
export function startKubeletRegistration(options: KubeletRegistrationOptions, log: Logger): Promise<UnixSocketServer> {
  const loaded = loadProto<{ pluginregistration: { Registration: grpc.ServiceClientConstructor } }>('pluginregistration.proto');
  const implementation: grpc.UntypedServiceImplementation = {
    GetInfo: unary('GetInfo', log, async () => ({
      type: 'CSIPlugin', name: options.driverName, endpoint: options.kubeletRegistrationPath, supported_versions: ['1.0.0'],
    })),
    NotifyRegistrationStatus: unary('NotifyRegistrationStatus', log, async (status: { plugin_registered: boolean; error: string }) => {
      if (status.plugin_registered) log.info({ driverName: options.driverName }, 'registered with kubelet');
      else log.error({ driverName: options.driverName, reason: status.error }, 'kubelet refused the registration');
      return {};
    }),
  };
  return UnixSocketServer.start(join(options.registrationDir, `${options.driverName}-reg.sock`), [[loaded.pluginregistration.Registration.service, implementation]]);
}

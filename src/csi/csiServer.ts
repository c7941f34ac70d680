import * as grpc from '@grpc/grpc-js';
import { InvalidArgument } from '../errors/errors';
import { CsiServices, loadCsiServices } from './csiProto';
import { UnixSocketServer } from './unixSocketServer';

export type CsiImplementations = Partial<Record<keyof CsiServices, grpc.UntypedServiceImplementation>>;

/** "unix:///csi/csi.sock", "unix:/csi/csi.sock" or "/csi/csi.sock" → the socket path. */
export function socketPathOf(endpoint: string): string {
  const path = endpoint.replace(/^unix:\/\//, '').replace(/^unix:/, '');
  if (!path.startsWith('/')) throw new InvalidArgument('--endpoint', `"${endpoint}" is not a unix socket; expected unix:///path/to/csi.sock`);
  return path;
}

/** The CSI services given, on the endpoint's unix socket. */
export function startCsiServer(endpoint: string, implementations: CsiImplementations): Promise<UnixSocketServer> {
  const services = loadCsiServices();
  return UnixSocketServer.start(
    socketPathOf(endpoint),
    (Object.entries(implementations) as Array<[keyof CsiServices, grpc.UntypedServiceImplementation]>).map(([name, implementation]) => [services[name], implementation]),
  );
}

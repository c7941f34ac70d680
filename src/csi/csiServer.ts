import { lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { InvalidArgument } from '../errors/errors';
import { CsiServices, loadCsiServices } from './csiProto';

export type CsiImplementations = Partial<Record<keyof CsiServices, grpc.UntypedServiceImplementation>>;

/** "unix:///csi/csi.sock", "unix:/csi/csi.sock" or "/csi/csi.sock" → the socket path. */
export function socketPathOf(endpoint: string): string {
  const path = endpoint.replace(/^unix:\/\//, '').replace(/^unix:/, '');
  if (!path.startsWith('/')) throw new InvalidArgument('--endpoint', `"${endpoint}" is not a unix socket; expected unix:///path/to/csi.sock`);
  return path;
}

/** A gRPC server on a unix socket answering the given CSI services. */
export class CsiServer {
  private constructor(private readonly server: grpc.Server, readonly socketPath: string) {}

  static async start(endpoint: string, implementations: CsiImplementations): Promise<CsiServer> {
    const socketPath = socketPathOf(endpoint);
    await mkdir(dirname(socketPath), { recursive: true });
    // A socket left by a previous run refuses the bind; anything else at the path is not ours to remove.
    const existing = await lstat(socketPath).catch(() => undefined);
    if (existing?.isSocket()) await unlink(socketPath);
    const server = new grpc.Server();
    const services = loadCsiServices();
    for (const [name, implementation] of Object.entries(implementations) as Array<[keyof CsiServices, grpc.UntypedServiceImplementation]>) {
      server.addService(services[name], implementation);
    }
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
    return new CsiServer(server, socketPath);
  }

  /** Stops taking calls, lets calls in flight finish for a while, then ends them. */
  async stop(graceMs = 5_000): Promise<void> {
    const timer = setTimeout(() => this.server.forceShutdown(), graceMs);
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    clearTimeout(timer);
    await unlink(this.socketPath).catch(() => undefined);
  }
}

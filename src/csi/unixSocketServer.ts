import { lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';

/** A gRPC server on one unix socket: the shape of every socket kubelet and the sidecars talk to. */
export class UnixSocketServer {
  private constructor(private readonly server: grpc.Server, readonly socketPath: string) {}

  static async start(socketPath: string, services: Array<[grpc.ServiceDefinition, grpc.UntypedServiceImplementation]>): Promise<UnixSocketServer> {
    await mkdir(dirname(socketPath), { recursive: true });
    // A socket left by a previous run refuses the bind; anything else at the path is not ours to remove.
    const existing = await lstat(socketPath).catch(() => undefined);
    if (existing?.isSocket()) await unlink(socketPath);
    const server = new grpc.Server();
    for (const [definition, implementation] of services) server.addService(definition, implementation);
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
    );
    return new UnixSocketServer(server, socketPath);
  }

  /** Stops taking calls, lets calls in flight finish for a while, then ends them and removes the socket. */
  async stop(graceMs = 5_000): Promise<void> {
    const timer = setTimeout(() => this.server.forceShutdown(), graceMs);
    await new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    clearTimeout(timer);
    await unlink(this.socketPath).catch(() => undefined);
  }
}

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { nodeConfig, NodeConfig } from '../../src/config/nodeConfig';
import { createLogger } from '../../src/log/logger';
import { NodeMachinery } from '../../src/prepare/nodeMachinery';
import { Publisher } from '../../src/prepare/publisher';
import { GitHttpServer, ServerOptions } from './gitHttpServer';
import { removeDir, tempDir } from './repoFixtures';

/** Everything a node-level test needs: a git server on loopback, a node's machinery, captured logs. */
export class NodeHarness {
  logs = '';
  private constructor(
    readonly root: string,
    readonly server: GitHttpServer,
    public node: NodeMachinery,
    readonly config: NodeConfig,
  ) {}

  get publisher(): Publisher {
    return this.node.publisher;
  }

  static async start(options: { server?: ServerOptions; config?: Partial<NodeConfig> } = {}): Promise<NodeHarness> {
    const root = await tempDir('node');
    const server = new GitHttpServer(join(root, 'served'), options.server);
    await server.start();
    const config = nodeConfig({
      stateDir: join(root, 'state'),
      cacheDir: join(root, 'cache'),
      treeMountGraceMs: 0,
      ...options.config,
    });
    const harness = new NodeHarness(root, server, undefined as unknown as NodeMachinery, config);
    harness.node = await NodeMachinery.open(config, harness.logger());
    return harness;
  }

  /** The bare repository directory served at `http://…/<name>`. */
  repoDir(name: string): string {
    return join(this.root, 'served', name);
  }

  url(name: string, userinfo = ''): string {
    return this.server.url(name, userinfo);
  }

  target(name: string): string {
    return join(this.root, 'targets', name);
  }

  /**
   * A node over the same directories, as after a restart of the node plugin; `cold` also empties the
   * stores and cache; `keepPublications` leaves the targets mounted, as the plugin does when it stops.
   */
  async restart(options: { cold?: boolean; keepPublications?: boolean } = {}): Promise<void> {
    await this.node.close({ keepPublications: options.keepPublications });
    if (options.cold) await removeDir(this.config.cacheDir);
    this.node = await NodeMachinery.open(this.config, this.logger());
  }

  async stop(): Promise<void> {
    await this.node.close().catch(() => undefined);
    await this.server.stop();
    await removeDir(this.root);
  }

  private logger() {
    const sink = new Writable({
      write: (chunk, _enc, done) => {
        this.logs += chunk.toString();
        done();
      },
    });
    return createLogger({ level: 'debug', destination: sink as unknown as pino.DestinationStream });
  }
}

/** Runs a command in a child process (never synchronously: this process serves the mounts). */
export function run(file: string, args: string[], options: { timeoutMs?: number; encoding?: 'buffer' | 'utf8' } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: options.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? ((err as unknown as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

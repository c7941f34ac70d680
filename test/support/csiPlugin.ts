import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadProto } from '../../src/csi/csiProto';
import { MAIN } from './mountCli';
import { run } from './nodeHarness';
import { processReport } from './processReport';


type Service = 'Identity' | 'Node' | 'Controller';
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Message = any;

export interface PluginOptions {
  /** `node --controller` (default) or `controller` alone. */
  command?: 'node' | 'controller';
  /** Extra flags for the command. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Run the plugin in a network namespace of its own (nothing it sends leaves the machine). */
  isolatedNetwork?: boolean;
  /** A command prefix that runs the plugin in namespaces made for the test (NetworkSandbox.enter). */
  enter?: string[];
}

/**
 * A real `gitfs-csi node --controller` (or `gitfs-csi controller`) process on a unix socket in `dir`, and real gRPC
 * clients for it. Restartable over the same state and cache directories.
 */
export class CsiPlugin {
  logs = '';
  exited: Promise<number | null> = Promise.resolve(null);
  private child: ChildProcess | undefined;
  private clients = new Map<Service, grpc.Client>();

  constructor(readonly dir: string, private readonly options: PluginOptions = {}) {}

  get socket(): string {
    return join(this.dir, 'csi.sock');
  }

  get pid(): number {
    return this.child!.pid!;
  }

  get stateDir(): string {
    return join(this.dir, 'state');
  }

  static async start(dir: string, options: PluginOptions = {}): Promise<CsiPlugin> {
    const plugin = new CsiPlugin(dir, options);
    await plugin.launch();
    return plugin;
  }

  async launch(): Promise<void> {
    const command = this.options.command === 'controller'
      ? ['controller']
      : ['node', '--controller', '--node-id', 'test-node', '--state-dir', this.stateDir, '--cache-dir', join(this.dir, 'cache'), '--tree-grace-ms', '0'];
    const extra = this.options.args ?? [];
    // Mounts end with the plugin unless a test asks for a holder: most tests count what a stop leaves.
    const holder = this.options.command === 'controller' || extra.includes('--fuse-holder') ? [] : ['--fuse-holder', 'none'];
    // The tests' git servers listen on loopback, which a node plugin refuses unless allowed by name.
    const remotes = this.options.command === 'controller' || extra.includes('--allow-remote') ? [] : ['--allow-remote', '127.0.0.1'];
    const args = [MAIN, ...command, '--endpoint', `unix://${this.socket}`, '--log-level', 'debug', ...holder, ...remotes, ...extra];
    const prefix = this.options.enter ?? (this.options.isolatedNetwork ? ['unshare', '--net'] : []);
    const [file, argv] = prefix.length > 0 ? [prefix[0], [...prefix.slice(1), process.execPath, ...args]] : [process.execPath, args];
    const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...this.options.env } });
    this.child = child;
    child.stderr!.on('data', (chunk: Buffer) => (this.logs += chunk.toString()));
    // GITFS_TEST_LOGS=<dir> keeps every plugin's log after its test directory is gone, for post-mortems.
    if (process.env.GITFS_TEST_LOGS) child.stderr!.pipe(createWriteStream(join(process.env.GITFS_TEST_LOGS, `plugin-${child.pid}.log`)));
    this.exited = new Promise((r) => child.on('close', r));
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const probe = await this.call('Identity', 'Probe', {});
        if (probe.ready?.value) return;
      } catch (err) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`node plugin did not start (exit ${child.exitCode}): ${this.logs.slice(-2000)} ${err}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Waits for a log line (log lines cross a pipe, so they may arrive after the call they belong to). */
  async waitForLog(pattern: RegExp, timeoutMs = 5_000): Promise<void> {
    for (const deadline = Date.now() + timeoutMs; !pattern.test(this.logs) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    if (!pattern.test(this.logs)) throw new Error(`no log line matching ${pattern}`);
  }

  /** One unary call; rejects with the gRPC error (`code`, `details`). */
  call(service: Service, method: string, request: Message, timeoutMs = 120_000): Promise<Message> {
    const client = this.client(service) as unknown as Record<string, (req: Message, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Message) => void) => void>;
    return new Promise((resolvePromise, reject) =>
      client[method].call(client, request, { deadline: Date.now() + timeoutMs }, (err, response) => (err ? reject(err) : resolvePromise(response))),
    );
  }

  /**
   * Stops the process: SIGTERM for a clean stop, SIGKILL for a crash. A process that ignores
   * SIGTERM for 20 s is killed, and one that cannot even be killed is reported, never waited
   * on forever.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
    const child = this.child;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    // Settles once the process is gone and its stderr is all read, so its logs are complete.
    if (await settlesWithin(this.exited, 20_000)) return;
    const report = await this.report();
    child.kill('SIGKILL');
    if (!(await settlesWithin(this.exited, 10_000))) throw new Error(`node plugin ${child.pid} did not exit even on SIGKILL\n${report}`);
    throw new Error(`node plugin ${child.pid} did not stop within 20 s of ${signal}; killed\n${report}`);
  }

  /** Where the process is stuck (threads, children) and its last log lines: for a test's failure message. */
  async report(): Promise<string> {
    const alive = this.child && this.child.exitCode === null && this.child.signalCode === null;
    const state = alive ? await processReport(this.pid) : `process exited (${this.child?.exitCode ?? this.child?.signalCode})`;
    return `${state}\nlast log lines:\n${this.logs.trimEnd().split('\n').slice(-40).join('\n')}`;
  }

  /** `work`, whose failure carries the plugin's report. */
  async explained<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      (err as Error).message += `\n${await this.report()}`;
      throw err;
    }
  }

  /** Ends the FUSE holder a `--fuse-holder spawn` plugin started: it outlives the plugin by design. */
  async killHolder(): Promise<void> {
    await run('pkill', ['-f', `fuse-holder --socket ${join(this.stateDir, 'fuse-holder.sock')}`]);
  }

  async restart(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await this.stop(signal);
    await this.launch();
  }

  private client(service: Service): grpc.Client {
    let client = this.clients.get(service);
    if (!client) {
      const loaded = loadProto<{ csi: { v1: Record<Service, grpc.ServiceClientConstructor> } }>('csi.proto');
      client = new loaded.csi.v1[service](`unix://${this.socket}`, grpc.credentials.createInsecure());
      this.clients.set(service, client);
    }
    return client;
  }
}

/** A NodePublishVolume request with sensible defaults: a read-only mount volume. */
export function publishRequest(fields: { volumeId: string; target: string; context: Record<string, string>; mode?: string; readonly?: boolean; secrets?: Record<string, string>; block?: boolean }): Message {
  return {
    volume_id: fields.volumeId,
    target_path: fields.target,
    volume_capability: fields.block
      ? { block: {}, access_mode: { mode: fields.mode ?? 'MULTI_NODE_READER_ONLY' } }
      : { mount: { fs_type: '', mount_flags: [] }, access_mode: { mode: fields.mode ?? 'MULTI_NODE_READER_ONLY' } },
    readonly: fields.readonly ?? false,
    volume_context: fields.context,
    secrets: fields.secrets ?? {},
  };
}

/** Resolves with the gRPC status name and message the call failed with ('OK' if it did not). */
export async function outcome(call: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await call;
    return { code: 'OK', message: '' };
  } catch (err) {
    const e = err as grpc.ServiceError;
    return { code: grpc.status[e.code] ?? String(e.code), message: e.details ?? e.message };
  }
}

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

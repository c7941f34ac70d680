import { ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Server } from 'node:net';
import { join } from 'node:path';

/**
 * A network and mount namespace of a test's own: loopback up, holding the addresses asked for
 * (a "metadata endpoint", a private address, a public one), and an /etc/hosts
 * the test rewrites at will (DNS that changes its answer). Nothing sent in it leaves the machine.
 * Processes join it through `enter`; `listen` opens a socket inside it for a server in the test
 * process to serve. Held by a small process (sandboxHolder) that dies with it.
 */
export class NetworkSandbox {
  private nextId = 0;
  private readonly listeners: Server[] = [];

  private constructor(
    private readonly holder: ChildProcess,
    private readonly hostsFile: string,
  ) {}

  static async create(dir: string, addresses: string[]): Promise<NetworkSandbox> {
    const hostsFile = join(dir, 'hosts');
    await writeFile(hostsFile, '127.0.0.1 localhost\n');
    const holder = spawn('unshare', ['--net', '--mount', '--propagation', 'slave', process.execPath, join(__dirname, 'sandboxHolder.js'), hostsFile, ...addresses], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      holder.once('message', () => resolve());
      holder.once('exit', (code) => reject(new Error(`the network sandbox could not be set up (exit ${code})`)));
    });
    return new NetworkSandbox(holder, hostsFile);
  }

  /** A command prefix that runs in the sandbox's network and mount namespaces. */
  get enter(): string[] {
    return ['nsenter', '-t', String(this.holder.pid), '-n', '-m', '--'];
  }

  /** What names resolve to inside the sandbox, from now on (at once: a server may change it mid-request). */
  setHosts(names: Record<string, string>): void {
    const lines = Object.entries(names).map(([name, address]) => `${address} ${name}\n`);
    writeFileSync(this.hostsFile, `127.0.0.1 localhost\n${lines.join('')}`);
  }

  /** A socket listening at host:port inside the sandbox, handed to this process. */
  listen(host: string, port: number): Promise<Server> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onMessage = (message: { id: number; error?: string }, handle: Server) => {
        if (message.id !== id) return;
        this.holder.off('message', onMessage);
        if (message.error) reject(new Error(`cannot listen on ${host}:${port} in the sandbox: ${message.error}`));
        else {
          this.listeners.push(handle);
          resolve(handle);
        }
      };
      this.holder.on('message', onMessage);
      this.holder.send({ id, host, port });
    });
  }

  async close(): Promise<void> {
    for (const listener of this.listeners) listener.close();
    if (this.holder.exitCode !== null || this.holder.signalCode !== null) return;
    const exited = new Promise((resolve) => this.holder.once('exit', resolve));
    this.holder.kill('SIGKILL');
    await exited;
  }
}

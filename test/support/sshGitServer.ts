import { ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './freePort';
import { run } from './nodeHarness';

export interface SshKey {
  privateKey: string;
  publicKey: string;
}

export async function sshKey(path: string): Promise<SshKey> {
  const made = await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'gitfs-test', '-f', path]);
  if (made.code !== 0) throw new Error(`ssh-keygen: ${made.stderr}`);
  return { privateKey: await readFile(path, 'utf8'), publicKey: (await readFile(`${path}.pub`, 'utf8')).trim() };
}

/**
 * A real OpenSSH server on loopback that serves git over ssh to one authorized key; or, given a
 * command prefix (NetworkSandbox.enter), on an address of a test's network namespace.
 */
export class SshGitServer {
  private child: ChildProcess | undefined;
  port = 0;
  hostKey!: SshKey;
  clientKey!: SshKey;
  logs = '';

  constructor(
    readonly dir: string,
    private readonly where: { address: string; host?: string; enter?: string[] } = { address: '127.0.0.1' },
  ) {}

  /** The name volumes use for the server: its address, or a host name the test resolves to it. */
  private get host(): string {
    return this.where.host ?? this.where.address;
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await mkdir('/run/sshd', { recursive: true }); // sshd's privilege separation directory
    this.hostKey = await sshKey(join(this.dir, 'host_key'));
    this.clientKey = await sshKey(join(this.dir, 'client_key'));
    await writeFile(join(this.dir, 'authorized_keys'), `${this.clientKey.publicKey}\n`, { mode: 0o600 });
    this.port = await freePort();
    const config = join(this.dir, 'sshd_config');
    await writeFile(config, [
      `Port ${this.port}`, `ListenAddress ${this.where.address}`, `HostKey ${join(this.dir, 'host_key')}`,
      `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}`, 'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password', 'StrictModes no', 'UsePAM no', `PidFile ${join(this.dir, 'sshd.pid')}`, '',
    ].join('\n'));
    const command = [...(this.where.enter ?? []), '/usr/sbin/sshd', '-D', '-e', '-f', config];
    const child = spawn(command[0], command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    child.stderr!.on('data', (c: Buffer) => (this.logs += c.toString()));
    for (let i = 0; i < 100 && !/Server listening/.test(this.logs); i++) {
      if (child.exitCode !== null) throw new Error(`sshd exited: ${this.logs}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The known_hosts line for this server. */
  get knownHosts(): string {
    return `[${this.host}]:${this.port} ${this.hostKey.publicKey.split(' ').slice(0, 2).join(' ')}\n`;
  }

  url(bareDir: string): string {
    return `ssh://root@${this.host}:${this.port}${bareDir}`;
  }

  async stop(): Promise<void> {
    this.child?.kill('SIGTERM');
    if (this.child && this.child.exitCode === null) await new Promise((r) => this.child!.on('close', r));
  }
}

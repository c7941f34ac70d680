import { networkInterfaces } from 'node:os';
import { GenericContainer, StartedTestContainer, Wait } from 'testcontainers';

export const GIT_USER = 'reader';

export interface GitServer {
  /** http://<address>:<port>/git/public/<name> — no credentials needed. */
  publicUrl(name: string): string;
  /** http://<address>:<port>/git/private/<name> — basic auth (GIT_USER + password). */
  privateUrl(name: string): string;
  /** ssh://root@<address>:<port>/srv/git/private/<name> */
  sshUrl(name: string): string;
  /** known_hosts line for the SSH port. */
  knownHosts: string;
  password: string;
  stop(): Promise<void>;
}

/**
 * The address pods reach this machine at. The cluster's node is this machine (local) or a
 * container on its Docker network (kind); E2E_HOST_ADDRESS overrides.
 */
export function hostAddress(): string {
  if (process.env.E2E_HOST_ADDRESS) return process.env.E2E_HOST_ADDRESS;
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (name === 'lo') continue;
    const v4 = addresses?.find((a) => a.family === 'IPv4' && !a.internal);
    if (v4) return v4.address;
  }
  throw new Error('no non-loopback IPv4 address for pods to reach the git server; set E2E_HOST_ADDRESS');
}

/**
 * The e2e git server (e2e/images/git-server), started with testcontainers from a local image:
 * `repositories` is a directory holding public/ and private/ bare repositories.
 */
export async function startGitServer(repositories: string, options: { password: string; sshPublicKey: string }): Promise<GitServer> {
  const image = process.env.E2E_GIT_SERVER_IMAGE ?? 'gitfs-csi-e2e/git-server:dev';
  const container: StartedTestContainer = await new GenericContainer(image)
    .withEnvironment({ GIT_USER, GIT_PASSWORD: options.password, SSH_AUTHORIZED_KEY: options.sshPublicKey })
    .withBindMounts([{ source: repositories, target: '/srv/git', mode: 'ro' }])
    .withExposedPorts(80, 22)
    .withWaitStrategy(Wait.forLogMessage('git server ready'))
    .start();
  const hostKey = (await container.exec(['cut', '-d', ' ', '-f1,2', '/etc/ssh/ssh_host_ed25519_key.pub'])).output.trim();
  const address = hostAddress();
  const http = `${address}:${container.getMappedPort(80)}`;
  const sshPort = container.getMappedPort(22);
  return {
    publicUrl: (name) => `http://${http}/git/public/${name}`,
    privateUrl: (name) => `http://${http}/git/private/${name}`,
    sshUrl: (name) => `ssh://root@${address}:${sshPort}/srv/git/private/${name}`,
    knownHosts: `[${address}]:${sshPort} ${hostKey}\n`,
    password: options.password,
    stop: async () => {
      await container.stop();
    },
  };
}

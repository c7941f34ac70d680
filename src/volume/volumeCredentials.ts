import { InvalidArgument } from '../errors/errors';
import { HttpCredentials, RemoteUrl } from '../git/remoteUrl';
import { SshIdentity } from '../git/sshKeyring';
import { redact } from '../log/redact';

const KNOWN_KEYS = ['username', 'password', 'token', 'ssh-privatekey', 'known_hosts'];
/** The username sent with a bare token: hosting services accept any name beside a token. */
const TOKEN_USERNAME = 'x-access-token';

export interface VolumeCredentials {
  http?: HttpCredentials;
  ssh?: SshIdentity;
}

const field = (key: string) => `secrets["${redact(key).slice(0, 100)}"]`;

/**
 * Per-volume credentials from the volume's secret (`nodePublishSecretRef`): for http(s),
 * `username` + `password`, or `token` (optionally with `username`); for ssh, `ssh-privatekey`
 * (optionally with `known_hosts`). No secret means the node's ambient git and ssh
 * configuration. Values never appear in errors; keys do.
 */
export function volumeCredentials(secrets: Record<string, string>, remote: RemoteUrl): VolumeCredentials {
  for (const key of Object.keys(secrets)) {
    if (!KNOWN_KEYS.includes(key)) throw new InvalidArgument(field(key), `unknown key; expected ${KNOWN_KEYS.join(', ')}`);
  }
  if (secrets['ssh-privatekey'] !== undefined || secrets.known_hosts !== undefined) return { ssh: sshIdentity(secrets, remote) };
  return { http: httpCredentials(secrets, remote) };
}

function sshIdentity(secrets: Record<string, string>, remote: RemoteUrl): SshIdentity {
  const privateKey = secrets['ssh-privatekey'];
  if (remote.transport !== 'ssh') throw new InvalidArgument(field('ssh-privatekey'), `applies to ssh repositories; ${remote.display} uses ${remote.transport}`);
  if (!privateKey) throw new InvalidArgument(field('ssh-privatekey'), 'is required with "known_hosts"');
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) throw new InvalidArgument(field('ssh-privatekey'), 'is not a PEM or OpenSSH private key');
  for (const key of ['username', 'password', 'token']) {
    if (secrets[key] !== undefined) throw new InvalidArgument(field(key), 'cannot be combined with "ssh-privatekey"');
  }
  return { privateKey, knownHosts: secrets.known_hosts };
}

function httpCredentials(secrets: Record<string, string>, remote: RemoteUrl): HttpCredentials | undefined {
  const { username, password, token } = secrets;
  if (username === undefined && password === undefined && token === undefined) return undefined;
  if (remote.transport !== 'http' && remote.transport !== 'https') {
    throw new InvalidArgument(field(token !== undefined ? 'token' : 'password'), `applies to http(s) repositories; ${remote.display} uses ${remote.transport}`);
  }
  if (password !== undefined && token !== undefined) throw new InvalidArgument(field('token'), 'give either "password" or "token", not both');
  if (token !== undefined) {
    if (token === '') throw new InvalidArgument(field('token'), 'is empty');
    return { username: username || TOKEN_USERNAME, password: token };
  }
  if (!username) throw new InvalidArgument(field('username'), 'is required with "password"');
  if (!password) throw new InvalidArgument(field('password'), `is required with "username"`);
  return { username, password };
}

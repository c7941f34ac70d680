import { InvalidArgument } from '../errors/errors';
import { HttpCredentials, RemoteUrl } from '../git/remoteUrl';
import { redact } from '../log/redact';

const KNOWN_KEYS = ['username', 'password', 'token'];
/** The username sent with a bare token: hosting services accept any name beside a token. */
const TOKEN_USERNAME = 'x-access-token';

/**
 * Per-volume credentials from the volume's secret (`nodePublishSecretRef`): `username` +
 * `password`, or `token` (optionally with `username`). No secret means the node's ambient
 * git configuration. Values never appear in errors; keys do.
 */
export function volumeCredentials(secrets: Record<string, string>, remote: RemoteUrl): HttpCredentials | undefined {
  const field = (key: string) => `secrets["${redact(key).slice(0, 100)}"]`;
  for (const key of Object.keys(secrets)) {
    if (!KNOWN_KEYS.includes(key)) throw new InvalidArgument(field(key), `unknown key; expected ${KNOWN_KEYS.join(', ')}`);
  }
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

import { createHash } from 'node:crypto';
import { InvalidArgument } from '../errors/errors';
import { redact } from '../log/redact';

export type Transport = 'https' | 'http' | 'ssh' | 'file';

/** Username and secret for an HTTP(S) remote, carried beside the URL, never inside it. */
export interface HttpCredentials {
  username: string;
  password: string;
}

export interface RemoteUrlOptions {
  /** file:// and bare paths are refused unless the caller enables them (tests, the demo). */
  allowFile?: boolean;
  /** Name of the field the URL came from, for error messages. */
  field?: string;
}

const SCP_LIKE = /^(?:([^@/\s]+)@)?([^:/\s]+):(?!\/\/)(.+)$/;
const DEFAULT_PORTS: Record<string, string> = { https: '443', http: '80', ssh: '22' };

/**
 * A git remote as gitfs-csi sees it: an allowed transport, a URL without secrets for git,
 * a normalized key (one repository store per key per node) and a display form for logs.
 */
export class RemoteUrl {
  private constructor(
    readonly transport: Transport,
    /** The URL handed to git: no password or token in it. */
    readonly url: string,
    /** Scheme, lower-case host, default port dropped, trailing ".git" and "/" dropped. */
    readonly key: string,
    /** Credentials found in the URL's userinfo (http/https only). */
    readonly credentials: HttpCredentials | undefined,
  ) {}

  /** Safe for logs and error messages. */
  get display(): string {
    return redact(this.url);
  }

  /** A short stable name for directories keyed by this remote. */
  get storeName(): string {
    const digest = createHash('sha256').update(this.key).digest('hex').slice(0, 16);
    const tail = this.key.replace(/^[a-z]+:\/\//, '').replace(/[^A-Za-z0-9._-]+/g, '_').slice(-48);
    return `${tail}-${digest}`;
  }

  static parse(raw: string, options: RemoteUrlOptions = {}): RemoteUrl {
    const field = options.field ?? 'repository';
    const text = raw.trim();
    if (text === '') throw new InvalidArgument(field, 'is empty; expected an https://, http:// or ssh:// git URL');
    if (/[\s\x00-\x1f]/.test(text)) throw new InvalidArgument(field, `"${redact(text)}" contains whitespace or control characters`);
    if (text.startsWith('-')) throw new InvalidArgument(field, `"${redact(text)}" starts with "-"`);

    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
      const scp = SCP_LIKE.exec(text);
      if (scp && !text.startsWith('/') && !text.startsWith('.')) {
        const [, user, host, path] = scp;
        return RemoteUrl.parse(`ssh://${user ? `${user}@` : ''}${host}/${path.replace(/^\//, '')}`, options);
      }
      if (text.startsWith('/') && options.allowFile) return RemoteUrl.parse(`file://${text}`, options);
      const local = text.startsWith('/') ? ' (a local path needs --allow-file)' : '';
      throw new InvalidArgument(field, `"${redact(text)}" is not a URL; expected https://host/path, http://host/path, ssh://host/path or user@host:path${local}`);
    }

    let parsed: URL;
    try {
      parsed = new URL(text);
    } catch {
      throw new InvalidArgument(field, `"${redact(text)}" is not a valid URL`);
    }
    const scheme = parsed.protocol.replace(/:$/, '').toLowerCase();
    const transport = toTransport(scheme, options, field, text);

    if (transport === 'file') {
      if (parsed.host !== '' || parsed.username || parsed.password) {
        throw new InvalidArgument(field, `"${redact(text)}" must be file:///absolute/path`);
      }
      const path = decodeURIComponent(parsed.pathname);
      const key = `file://${path.replace(/\/+$/, '').replace(/\.git$/, '')}`;
      return new RemoteUrl('file', `file://${path}`, key, undefined);
    }

    if (parsed.hostname === '') throw new InvalidArgument(field, `"${redact(text)}" has no host`);
    let credentials: HttpCredentials | undefined;
    if (transport === 'ssh') {
      if (parsed.password) throw new InvalidArgument(field, `"${redact(text)}" carries a password; use an SSH key instead`);
    } else if (parsed.username || parsed.password) {
      credentials = { username: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) };
    }
    const user = transport === 'ssh' && parsed.username ? `${parsed.username}@` : '';
    const port = parsed.port && parsed.port !== DEFAULT_PORTS[transport] ? `:${parsed.port}` : '';
    const host = parsed.hostname.toLowerCase();
    const path = parsed.pathname + parsed.search;
    const url = `${transport}://${user}${host}${port}${path}`;
    const key = `${transport === 'http' || transport === 'https' ? 'http' : transport}://${host}${port}${parsed.pathname.replace(/\/+$/, '').replace(/\.git$/, '')}`;
    return new RemoteUrl(transport, url, key, credentials);
  }
}

function toTransport(scheme: string, options: RemoteUrlOptions, field: string, text: string): Transport {
  switch (scheme) {
    case 'https':
    case 'http':
    case 'ssh':
      return scheme;
    case 'git+ssh':
    case 'ssh+git':
      return 'ssh';
    case 'file':
      if (options.allowFile) return 'file';
      throw new InvalidArgument(field, `"${redact(text)}" uses file://, which is disabled without --allow-file; expected https, http or ssh`);
    default:
      throw new InvalidArgument(field, `"${redact(text)}" uses the "${scheme}" transport; expected https, http or ssh`);
  }
}

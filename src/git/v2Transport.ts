import http from 'node:http';
import https from 'node:https';
import { PassThrough, Readable } from 'node:stream';
import { AccessDenied, GitfsError, PolicyRefused } from '../errors/errors';
import { credentialsOf, offersCredentials, RemoteAccess } from './gitEnvironment';
import { killGit, spawnGit } from './gitProcess';
import { Packet, packetText, PktLineDecoder } from './pktLine';
import { noteReceived } from './receivedBytes';
import { requestGuard } from './remoteAddresses';

/**
 * Our own client could not get a definitive answer (the server wants credentials from the node's
 * git configuration, redirects where git would not follow, speaks only protocol v0, the network
 * failed, …): the caller asks git itself, which knows the node's whole configuration and
 * classifies the failure.
 */
export class UseGitClient extends GitfsError {
  constructor(why: string) {
    super('internal', `gitfs-csi's own client stepped aside: ${why}`);
  }
}

/** Whether git should take over a step our client failed: it stepped aside, or the transfer broke. */
export function leftToGit(err: unknown): boolean {
  return err instanceof UseGitClient || (err instanceof GitfsError && err.kind === 'transient');
}

/** One stateless protocol-v2 conversation with upload-pack: the advertisement, then requests. */
export interface V2Transport {
  /** The capabilities (`version 2` first), as packets. */
  advertise(): Promise<Packet[]>;
  /** Sends one request; resolves once the server accepted it, with its response as it streams. */
  request(body: Buffer): Promise<Readable>;
}

/**
 * Protocol v2 over smart HTTP (Node's own client) or, for file:// remotes, `git upload-pack`
 * itself. Undefined for ssh, and where a proxy is configured in the environment, which git's
 * client honours and ours does not.
 */
export function v2TransportFor(access: RemoteAccess, timeoutMs: number): V2Transport | undefined {
  switch (access.remote.transport) {
    case 'http':
    case 'https':
      return proxyConfigured() ? undefined : httpTransport(access, timeoutMs);
    case 'file':
      return access.allowFile ? localTransport(access, timeoutMs) : undefined;
    default:
      return undefined;
  }
}

/** The capabilities of an advertisement: `object-format=sha256` → "object-format" ↦ "sha256". */
export function parseCapabilities(packets: Packet[]): Map<string, string> {
  const [first, ...rest] = packets.map(packetText);
  if (first !== 'version 2') throw new UseGitClient('the server does not speak protocol v2');
  const capabilities = new Map<string, string>();
  for (const text of rest) {
    if (!text) continue;
    const eq = text.indexOf('=');
    if (eq < 0) capabilities.set(text, '');
    else capabilities.set(text.slice(0, eq), text.slice(eq + 1));
  }
  return capabilities;
}

/** A whole response as packets, for the short ones (ls-refs, object-info). */
export async function collectPackets(response: Readable): Promise<Packet[]> {
  const decoder = new PktLineDecoder();
  const packets: Packet[] = [];
  for await (const chunk of response as AsyncIterable<Buffer>) packets.push(...decodePackets(decoder, chunk));
  return packets;
}

/** Packets out of a response; a body that is not pkt-lines (an HTML login page, say) is left to git. */
export function decodePackets(decoder: PktLineDecoder, chunk: Buffer): Packet[] {
  try {
    return decoder.push(chunk);
  } catch (err) {
    throw new UseGitClient(`the server's answer is not protocol v2: ${(err as Error).message}`);
  }
}

function proxyConfigured(): boolean {
  return ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'].some((name) => process.env[name]);
}

/** How many redirects the advertisement may follow, as git's own client allows on its first request. */
const MAX_REDIRECTS = 5;
const ADVERTISEMENT = '/info/refs?service=git-upload-pack';

/**
 * Smart HTTP. The advertisement may be redirected (a renamed repository, a moved server): every
 * hop is checked against the remote policy again, credentials go only to the remote's own host,
 * and the requests after it go where it ended up, as git does.
 */
function httpTransport(access: RemoteAccess, timeoutMs: number): V2Transport {
  let base = access.remote.url.replace(/\/+$/, '');
  const origin = new URL(base).host;
  const credentials = credentialsOf(access);
  const send = (method: string, path: string, body?: Buffer) => {
    const url = new URL(base + path);
    const headers: Record<string, string> = { 'Git-Protocol': 'version=2', 'User-Agent': 'git/gitfs-csi' };
    if (credentials && url.host === origin) headers.Authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    if (body) Object.assign(headers, { 'Content-Type': 'application/x-git-upload-pack-request', Accept: 'application/x-git-upload-pack-result' });
    return httpResponse(url, method, headers, body, timeoutMs, access);
  };
  const follow = async () => {
    for (let hops = 0; ; hops++) {
      const answer = await send('GET', ADVERTISEMENT);
      if (answer instanceof Readable) return collectPackets(answer);
      const next = new URL(answer.location, base + ADVERTISEMENT);
      if (hops === MAX_REDIRECTS || !/^https?:$/.test(next.protocol) || !next.href.endsWith(ADVERTISEMENT)) {
        throw new UseGitClient(`${access.remote.display} redirects to a place git would not follow`);
      }
      base = next.href.slice(0, -ADVERTISEMENT.length);
    }
  };
  let advertisement: Promise<Packet[]> | undefined;
  return {
    advertise: () => {
      if (!advertisement) {
        advertisement = follow();
        advertisement.catch(() => (advertisement = undefined));
      }
      return advertisement;
    },
    request: async (body) => {
      const sentTo = base;
      const answer = await send('POST', '/git-upload-pack', body);
      if (answer instanceof Readable) return answer;
      // A request sent while the advertisement was being redirected goes again where it ended up.
      await advertisement?.catch(() => undefined);
      if (base !== sentTo) {
        const again = await send('POST', '/git-upload-pack', body);
        if (again instanceof Readable) return again;
      }
      throw new UseGitClient(`${access.remote.display} redirects a request`);
    },
  };
}

/** A 3xx answer: where it points. */
interface Redirect {
  location: string;
}

function httpResponse(url: URL, method: string, headers: Record<string, string>, body: Buffer | undefined, timeoutMs: number, access: RemoteAccess): Promise<Readable | Redirect> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    // No keep-alive agent: a connection closes with its response, so idle sockets never pile up in
    // the node plugin, and each new connection's address is checked against the policy.
    const req = client.request(url, { method, headers, timeout: timeoutMs, agent: false, ...requestGuard(access, url) }, (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        if (status >= 300 && status < 400 && res.headers.location) return resolve({ location: res.headers.location });
        // Refused credentials the volume brought are final; the rest git may still answer (ambient credentials).
        if ((status === 401 || status === 403) && offersCredentials(access)) return reject(new AccessDenied(access.remote.display));
        return reject(new UseGitClient(`HTTP ${status} from ${access.remote.display}`));
      }
      // Errors mid-body (reset, timeout) surface from the stream as UseGitClient, for git to retry.
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      res.on('error', (err) => out.destroy(new UseGitClient(`the response from ${access.remote.display} broke off: ${err.message}`)));
      res.on('aborted', () => out.destroy(new UseGitClient(`the response from ${access.remote.display} broke off`)));
      res.on('data', (chunk: Buffer) => noteReceived(url.host, chunk.length));
      res.pipe(out);
      // A reader that stops early (an error, a corrupt pack) closes the connection with it.
      out.on('close', () => res.destroy());
      resolve(out);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    // A policy refusal is final: git, under the same policy, would be refused too.
    req.on('error', (err) => reject(err instanceof PolicyRefused ? err : new UseGitClient(`${access.remote.display}: ${err.message}`)));
    req.end(body);
  });
}

/** file:// remotes: git upload-pack itself, one stateless exchange per request. */
function localTransport(access: RemoteAccess, timeoutMs: number): V2Transport {
  const path = decodeURIComponent(new URL(access.remote.url).pathname);
  const exchange = async (args: string[], input: Buffer): Promise<Readable> => {
    const child = spawnGit({ args: ['upload-pack', ...args, path], access, timeoutMs, extraEnv: { GIT_PROTOCOL: 'version=2' } });
    const timer = setTimeout(() => killGit(child), timeoutMs);
    const out = new PassThrough({ highWaterMark: 1 << 20 });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout!.pipe(out, { end: false });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(input);
    out.on('close', () => killGit(child)); // a reader that stops early stops git too
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) out.end();
      else out.destroy(new UseGitClient(`git upload-pack exited with ${code}: ${stderr.trim().slice(0, 200)}`));
    });
    return out;
  };
  return {
    advertise: async () => collectPackets(await exchange(['--advertise-refs', '--stateless-rpc'], Buffer.alloc(0))),
    request: (body) => exchange(['--stateless-rpc'], body),
  };
}

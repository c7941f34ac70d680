import http from 'node:http';
import https from 'node:https';
import { PassThrough, Readable } from 'node:stream';
import { AccessDenied, GitfsError } from '../errors/errors';
import { credentialsOf, offersCredentials, RemoteAccess } from './gitEnvironment';
import { killGit, spawnGit } from './gitProcess';
import { Packet, packetText, PktLineDecoder } from './pktLine';
import { noteReceived } from './receivedBytes';

/**
 * Our own client could not get a definitive answer (the server wants credentials from the node's
 * git configuration, redirects, speaks only protocol v0, the network failed, …): the caller asks
 * git itself, which knows the node's whole configuration and classifies the failure.
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

function httpTransport(access: RemoteAccess, timeoutMs: number): V2Transport {
  const base = access.remote.url.replace(/\/+$/, '');
  const credentials = credentialsOf(access);
  const headers: Record<string, string> = { 'Git-Protocol': 'version=2', 'User-Agent': 'git/gitfs-csi' };
  if (credentials) headers.Authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  const send = (method: string, path: string, body?: Buffer) => {
    const bodyHeaders: Record<string, string> = body ? { 'Content-Type': 'application/x-git-upload-pack-request', Accept: 'application/x-git-upload-pack-result' } : {};
    return httpResponse(new URL(base + path), method, { ...headers, ...bodyHeaders }, body, timeoutMs, access);
  };
  return {
    advertise: async () => collectPackets(await send('GET', '/info/refs?service=git-upload-pack')),
    request: (body) => send('POST', '/git-upload-pack', body),
  };
}

function httpResponse(url: URL, method: string, headers: Record<string, string>, body: Buffer | undefined, timeoutMs: number, access: RemoteAccess): Promise<Readable> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    // No keep-alive agent: a connection closes with its response, so idle sockets never pile up in the node plugin.
    const req = client.request(url, { method, headers, timeout: timeoutMs, agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        res.resume();
        // Refused credentials the volume brought are final; the rest git may still answer (ambient credentials, redirects).
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
    req.on('error', (err) => reject(new UseGitClient(`${access.remote.display}: ${err.message}`)));
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

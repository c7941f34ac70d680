import http from 'node:http';
import https from 'node:https';
import { AuthenticationRequired, GitfsError, TransientTransportError, Unavailable } from '../errors/errors';
import { credentialsOf, RemoteAccess } from './gitEnvironment';
import { runGit } from './gitProcess';
import { DELIM, FLUSH, Packet, packetText, pktLine, PktLineDecoder } from './pktLine';

/**
 * Asks the server for blob sizes with protocol v2's `object-info` command: one request for
 * thousands of objects, no blob contents. Servers advertise it when configured to
 * (git: transfer.advertiseObjectInfo=true). Returns undefined when the server does not offer
 * it, so the caller can fall back to fetching the blobs.
 */
export async function fetchObjectSizes(access: RemoteAccess, oids: string[], timeoutMs: number): Promise<Map<string, number> | undefined> {
  const transport = transportFor(access, timeoutMs);
  if (!transport) return undefined;
  const capabilities = parseCapabilities(await transport.advertise());
  if (!capabilities.has('object-info')) return undefined;
  const objectFormat = capabilities.get('object-format');
  const sizes = new Map<string, number>();
  const chunks: string[][] = [];
  for (let i = 0; i < oids.length; i += CHUNK) chunks.push(oids.slice(i, i + CHUNK));
  // Two requests in flight: the server spends its time looking objects up, on both cores.
  let next = 0;
  const worker = async () => {
    while (next < chunks.length) {
      const chunk = chunks[next++];
      const response = await transport.request(objectInfoRequest(chunk, objectFormat));
      parseObjectInfo(response, sizes);
    }
  };
  await Promise.all([worker(), worker()]);
  return sizes;
}

const CHUNK = 5000;

interface V2Transport {
  advertise(): Promise<Packet[]>;
  request(body: Buffer): Promise<Packet[]>;
}

function transportFor(access: RemoteAccess, timeoutMs: number): V2Transport | undefined {
  switch (access.remote.transport) {
    case 'http':
    case 'https':
      return httpTransport(access, timeoutMs);
    case 'file':
      return access.allowFile ? localTransport(access, timeoutMs) : undefined;
    default:
      return undefined; // ssh: git offers no client for object-info; the caller falls back
  }
}

function objectInfoRequest(oids: string[], objectFormat: string | undefined): Buffer {
  const parts = [pktLine('command=object-info\n'), pktLine('agent=gitfs-csi\n')];
  if (objectFormat && objectFormat !== 'sha1') parts.push(pktLine(`object-format=${objectFormat}\n`));
  parts.push(DELIM, pktLine('size\n'));
  for (const oid of oids) parts.push(pktLine(`oid ${oid}\n`));
  parts.push(FLUSH);
  return Buffer.concat(parts);
}

function parseCapabilities(packets: Packet[]): Map<string, string> {
  const capabilities = new Map<string, string>();
  for (const packet of packets) {
    const text = packetText(packet);
    if (!text || text.startsWith('#') || text.startsWith('version ')) continue;
    const eq = text.indexOf('=');
    if (eq < 0) capabilities.set(text, '');
    else capabilities.set(text.slice(0, eq), text.slice(eq + 1));
  }
  return capabilities;
}

function parseObjectInfo(packets: Packet[], into: Map<string, number>): void {
  let sawAttributes = false;
  for (const packet of packets) {
    const text = packetText(packet);
    if (text === undefined) continue;
    if (!sawAttributes) {
      sawAttributes = true;
      if (text.trim() !== 'size') throw new GitfsError('internal', `unexpected object-info attributes "${text.slice(0, 80)}"`);
      continue;
    }
    const [oid, size] = text.split(' ');
    if (size !== undefined && /^\d+$/.test(size)) into.set(oid, Number(size));
  }
}

function decodeAll(body: Buffer): Packet[] {
  return new PktLineDecoder().push(body);
}

function httpTransport(access: RemoteAccess, timeoutMs: number): V2Transport {
  const base = access.remote.url.replace(/\/+$/, '');
  const credentials = credentialsOf(access);
  const headers: Record<string, string> = { 'Git-Protocol': 'version=2', 'User-Agent': 'git/gitfs-csi' };
  if (credentials) headers.Authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  const send = (method: string, path: string, body?: Buffer) =>
    httpRequest(new URL(base + path), method, body ? { ...headers, 'Content-Type': 'application/x-git-upload-pack-request', Accept: 'application/x-git-upload-pack-result' } : headers, body, timeoutMs, access);
  return {
    advertise: async () => decodeAll(await send('GET', '/info/refs?service=git-upload-pack')),
    request: async (body) => decodeAll(await send('POST', '/git-upload-pack', body)),
  };
}

function httpRequest(url: URL, method: string, headers: Record<string, string>, body: Buffer | undefined, timeoutMs: number, access: RemoteAccess): Promise<Buffer> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request(url, { method, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => reject(new TransientTransportError(`object-info from ${access.remote.display}: ${err.message}`)));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status === 401 || status === 403) return reject(new AuthenticationRequired(access.remote.display));
        if (status >= 500) return reject(new TransientTransportError(`object-info from ${access.remote.display}: HTTP ${status}`));
        if (status !== 200) return reject(new GitfsError('internal', `object-info from ${access.remote.display}: HTTP ${status}`));
        resolve(Buffer.concat(chunks));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(new Unavailable(`object-info from ${access.remote.display}: ${err.message}`)));
    req.end(body);
  });
}

/** file:// remotes: git upload-pack itself, one stateless exchange per request. */
function localTransport(access: RemoteAccess, timeoutMs: number): V2Transport {
  const path = decodeURIComponent(new URL(access.remote.url).pathname);
  const exchange = async (args: string[], input: Buffer) => {
    const { stdout } = await runGit({ args: ['upload-pack', ...args, path], access, input, timeoutMs, extraEnv: { GIT_PROTOCOL: 'version=2' } });
    return decodeAll(stdout);
  };
  return {
    advertise: () => exchange(['--advertise-refs', '--stateless-rpc'], Buffer.alloc(0)),
    request: (body) => exchange(['--stateless-rpc'], body),
  };
}

import { GitfsError } from '../errors/errors';
import { RemoteAccess } from './gitEnvironment';
import { DELIM, FLUSH, Packet, packetText, pktLine } from './pktLine';
import { collectPackets, parseCapabilities, UseGitClient, v2TransportFor } from './v2Transport';

/**
 * Asks the server for blob sizes with protocol v2's `object-info` command: one request for
 * thousands of objects, no blob contents. Servers advertise it when configured to
 * (git: transfer.advertiseObjectInfo=true). Returns undefined when the server does not offer
 * it (or only git's own client could reach it), so the caller can fall back to fetching the blobs.
 */
export async function fetchObjectSizes(access: RemoteAccess, oids: string[], timeoutMs: number): Promise<Map<string, number> | undefined> {
  const transport = v2TransportFor(access, timeoutMs);
  if (!transport) return undefined;
  try {
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
        parseObjectInfo(await collectPackets(await transport.request(objectInfoRequest(chunk, objectFormat))), sizes);
      }
    };
    await Promise.all([worker(), worker()]);
    return sizes;
  } catch (err) {
    if (err instanceof UseGitClient) return undefined;
    throw err;
  }
}

const CHUNK = 5000;

function objectInfoRequest(oids: string[], objectFormat: string | undefined): Buffer {
  const parts = [pktLine('command=object-info\n'), pktLine('agent=gitfs-csi\n')];
  if (objectFormat && objectFormat !== 'sha1') parts.push(pktLine(`object-format=${objectFormat}\n`));
  parts.push(DELIM, pktLine('size\n'));
  for (const oid of oids) parts.push(pktLine(`oid ${oid}\n`));
  parts.push(FLUSH);
  return Buffer.concat(parts);
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

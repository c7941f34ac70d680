import { GitfsError } from '../errors/errors';
import { Packet, packetText } from './pktLine';
import { UploadPackClient } from './uploadPackClient';
import { leftToGit } from './v2Transport';

/**
 * Asks the server for blob sizes with protocol v2's `object-info` command: one request for
 * thousands of objects, no blob contents. Servers advertise it when configured to
 * (git: transfer.advertiseObjectInfo=true). Returns undefined when the server does not offer
 * it (or there is no client of ours for the remote, or only git's could reach it), so the
 * caller can fall back to fetching the blobs.
 */
export async function fetchObjectSizes(client: UploadPackClient | undefined, oids: string[]): Promise<Map<string, number> | undefined> {
  if (!client) return undefined;
  try {
    if (!(await client.offers('object-info'))) return undefined;
    const sizes = new Map<string, number>();
    // One request at a time: a tree's sizes are background work, and the server's other core is
    // left to what a reader waits for (one file's size, its content).
    for (let i = 0; i < oids.length; i += CHUNK) {
      parseObjectInfo(await client.command('object-info', ['size', ...oids.slice(i, i + CHUNK).map((oid) => `oid ${oid}`)]), sizes);
    }
    return sizes;
  } catch (err) {
    if (leftToGit(err)) return undefined;
    throw err;
  }
}

const CHUNK = 5000;

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

import { Readable } from 'node:stream';
import { DELIM, FLUSH, Packet, packetText, pktLine, PktLineDecoder } from './pktLine';
import { RemoteAccess } from './gitEnvironment';
import { collectPackets, decodePackets, parseCapabilities, UseGitClient, V2Transport, v2TransportFor } from './v2Transport';

/** A remote's refs: each name's object id (an annotated tag's peeled commit under "<name>^{}"), and where its symbolic refs (HEAD) point. */
export interface RemoteRefs {
  oids: Map<string, string>;
  symrefs: Map<string, string>;
}

export interface PackRequest {
  wants: string[];
  /** Commits of history to send (protocol `deepen`); absent for all of it. */
  depth?: number;
  /** A partial-clone filter, such as `blob:none`. */
  filter?: string;
}

/** Our own client for the remote (http, https, and file where allowed), or undefined where git's is used. */
export function uploadPackClientFor(access: RemoteAccess, timeoutMs: number): UploadPackClient | undefined {
  const transport = v2TransportFor(access, timeoutMs);
  return transport && new UploadPackClient(transport);
}

/**
 * Speaks protocol v2's `ls-refs`, `fetch` (and, for others, any short command such as
 * `object-info`) to upload-pack over a stateless transport, asking for its advertisement once. It does
 * what a volume needs and nothing more: no negotiation (it never has objects to offer), the
 * pack streamed to the caller as it arrives. Anything it does not understand makes it step
 * aside (UseGitClient) rather than guess.
 */
export class UploadPackClient {
  private capabilities: Promise<Map<string, string>> | undefined;

  constructor(private readonly transport: V2Transport) {}

  /** "sha1" or "sha256", from the server's advertisement. */
  async objectFormat(): Promise<'sha1' | 'sha256'> {
    return (await this.advertised()).get('object-format') === 'sha256' ? 'sha256' : 'sha1';
  }

  /** Whether the server advertises a command or capability (`object-info`, say). */
  async offers(capability: string): Promise<boolean> {
    return (await this.advertised()).has(capability);
  }

  /** One command with a short answer, in the server's object format; the answer as packets. */
  async command(name: string, args: string[]): Promise<Packet[]> {
    return collectPackets(await this.request(name, args, await this.objectFormat()));
  }

  /**
   * Every ref by name, with annotated tags' commits under "<name>^{}" (as ls-remote lists them).
   * The listing is asked for beside the advertisement, as SHA-1 (nearly every repository): one
   * round trip's wait instead of two. A SHA-256 server is asked again, in its own format.
   */
  async listRefs(): Promise<RemoteRefs> {
    const guess = this.request('ls-refs', ['peel', 'symrefs'], 'sha1').then(collectPackets);
    guess.catch(() => undefined);
    const packets = (await this.objectFormat()) === 'sha1' ? await guess : await this.command('ls-refs', ['peel', 'symrefs']);
    const refs: RemoteRefs = { oids: new Map(), symrefs: new Map() };
    for (const packet of packets) {
      const text = packetText(packet);
      if (!text) continue;
      if (text.startsWith('ERR ')) throw new UseGitClient(`the server refused ls-refs: ${text.slice(4, 200)}`);
      const [oid, name, ...attributes] = text.split(' ');
      refs.oids.set(name, oid);
      const peeled = attributes.find((a) => a.startsWith('peeled:'));
      if (peeled) refs.oids.set(`${name}^{}`, peeled.slice('peeled:'.length));
      const target = attributes.find((a) => a.startsWith('symref-target:'));
      if (target) refs.symrefs.set(name, target.slice('symref-target:'.length));
    }
    return refs;
  }

  /**
   * Fetches a pack of `wants` and everything they reach (within depth and filter), handing its
   * bytes to `onPack` as they arrive. Resolves with the commits the server marked shallow.
   */
  async fetch(request: PackRequest, onPack: (chunk: Buffer) => Promise<void>): Promise<{ shallow: string[] }> {
    const features = new Set(((await this.advertised()).get('fetch') ?? '').split(' '));
    if (request.filter && !features.has('filter')) throw new UseGitClient('the server does not offer partial-clone filters');
    if (request.depth && !features.has('shallow')) throw new UseGitClient('the server does not offer shallow fetches');
    const args = ['no-progress', 'ofs-delta'];
    if (request.depth) args.push(`deepen ${request.depth}`);
    if (request.filter) args.push(`filter ${request.filter}`);
    args.push(...request.wants.map((oid) => `want ${oid}`), 'done');
    const response = await this.request('fetch', args, await this.objectFormat());

    const decoder = new PktLineDecoder();
    const shallow: string[] = [];
    let section: string | undefined;
    let ended = false;
    for await (const chunk of response as AsyncIterable<Buffer>) {
      for (const packet of decodePackets(decoder, chunk)) {
        if (packet.type === 'flush') {
          ended = true;
          continue;
        }
        if (packet.type !== 'data') {
          section = undefined; // a delimiter closes the section
          continue;
        }
        if (section === 'packfile') {
          const band = packet.payload[0];
          if (band === 1) await onPack(packet.payload.subarray(1));
          else if (band === 3) throw new UseGitClient(`the server failed while sending the pack: ${packet.payload.toString('utf8', 1, 200).trim()}`);
          continue;
        }
        const text = packetText(packet)!;
        if (text.startsWith('ERR ')) throw new UseGitClient(`the server refused the fetch: ${text.slice(4, 200)}`);
        if (section === undefined) section = text;
        else if (section === 'shallow-info' && text.startsWith('shallow ')) shallow.push(text.slice('shallow '.length));
      }
    }
    if (!ended) throw new UseGitClient('the fetch response ended before its pack did');
    return { shallow };
  }

  private advertised(): Promise<Map<string, string>> {
    this.capabilities ??= this.transport.advertise().then(parseCapabilities);
    this.capabilities.catch(() => (this.capabilities = undefined));
    return this.capabilities;
  }

  private request(command: string, args: string[], format: 'sha1' | 'sha256'): Promise<Readable> {
    const parts = [pktLine(`command=${command}\n`), pktLine('agent=gitfs-csi\n')];
    if (format !== 'sha1') parts.push(pktLine(`object-format=${format}\n`));
    parts.push(DELIM, ...args.map((arg) => pktLine(`${arg}\n`)), FLUSH);
    return this.transport.request(Buffer.concat(parts));
  }
}

/**
 * Git's pkt-line framing: four hex digits of length (including themselves) then the payload;
 * "0000" flush, "0001" delimiter, "0002" response-end.
 */

export const FLUSH = Buffer.from('0000');
export const DELIM = Buffer.from('0001');

export function pktLine(text: string | Buffer): Buffer {
  const payload = typeof text === 'string' ? Buffer.from(text) : text;
  if (payload.length > 65516) throw new RangeError('pkt-line payload too long');
  return Buffer.concat([Buffer.from((payload.length + 4).toString(16).padStart(4, '0')), payload]);
}

export type Packet = { type: 'data'; payload: Buffer } | { type: 'flush' } | { type: 'delim' } | { type: 'end' };

/** Incremental decoder: feed bytes as they arrive, take whole packets out. */
export class PktLineDecoder {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Packet[] {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const packets: Packet[] = [];
    while (this.pending.length >= 4) {
      const length = parseInt(this.pending.subarray(0, 4).toString('latin1'), 16);
      if (Number.isNaN(length)) throw new Error('malformed pkt-line length');
      if (length < 4) {
        packets.push(length === 0 ? { type: 'flush' } : length === 1 ? { type: 'delim' } : { type: 'end' });
        this.pending = this.pending.subarray(4);
        continue;
      }
      if (this.pending.length < length) break;
      packets.push({ type: 'data', payload: this.pending.subarray(4, length) });
      this.pending = this.pending.subarray(length);
    }
    return packets;
  }
}

/** Payload text of a data packet without its trailing newline. */
export function packetText(packet: Packet): string | undefined {
  if (packet.type !== 'data') return undefined;
  return packet.payload.toString('utf8').replace(/\n$/, '');
}

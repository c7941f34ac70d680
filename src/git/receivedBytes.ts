/** Bytes our own protocol-v2 client has received over HTTP in this process, by remote host (host:port). */
const received = new Map<string, number>();

export function noteReceived(host: string, bytes: number): void {
  received.set(host, (received.get(host) ?? 0) + bytes);
}

export function receivedBytes(): ReadonlyMap<string, number> {
  return received;
}

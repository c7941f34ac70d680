import http from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { InvalidArgument } from '../errors/errors';

/** "0.0.0.0:9808", "[::1]:9808" or ":9808" (every address) → where to listen. */
export function parseListenAddress(text: string, flag: string): { host?: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port < 1 || port > 65535) throw new InvalidArgument(flag, `"${text.slice(0, 100)}" is not an address to listen on; expected host:port or :port (port 1-65535)`);
  const host = match[1] ?? match[2];
  return { ...(host ? { host } : {}), port };
}

/**
 * GET /metrics on `address`: the registry in Prometheus' text format, with the process's own
 * metrics (memory, descriptors, event loop lag, garbage collection) beside ours.
 */
export async function startMetricsEndpoint(address: { host?: string; port: number }, registry: Registry): Promise<http.Server> {
  collectDefaultMetrics({ register: registry });
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at GET /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics could not be collected: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => resolve());
  });
  return server;
}

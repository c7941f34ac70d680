import { chmod, rm } from 'node:fs/promises';
import http from 'node:http';
import { GitfsError } from '../errors/errors';
import { NodeStatus } from './nodeStatus';

/** Under the state directory: where a running node plugin answers `gitfs-csi status`. */
export const STATUS_SOCKET = 'status.sock';

/** Answers GET /status on a unix socket only root can open. */
export async function serveStatus(path: string, status: () => Promise<NodeStatus>): Promise<http.Server> {
  await rm(path, { force: true }); // left by a plugin that did not stop cleanly
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/status') return void res.writeHead(404).end();
    status().then(
      (body) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(err.message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o600);
  return server;
}

/** Asks the node plugin answering at `path`. */
export function askStatus(path: string, timeoutMs: number): Promise<NodeStatus> {
  return new Promise((resolve, reject) => {
    const unavailable = (why: string) => new GitfsError('unavailable', `no node plugin answers at ${path} (${why}); is it running, with this --state-dir?`);
    const req = http.get({ socketPath: path, path: '/status', timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new GitfsError('internal', `the node plugin could not say: ${body.trim()}`));
        resolve(JSON.parse(body) as NodeStatus);
      });
    });
    req.on('timeout', () => req.destroy(unavailable(`no answer within ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => reject(err instanceof GitfsError ? err : unavailable(err.code ?? err.message)));
  });
}

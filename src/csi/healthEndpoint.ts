import http from 'node:http';

/**
 * GET /healthz on `port`: 200 while `ready()` holds, 503 otherwise — what the livenessprobe sidecar
 * offers kubelet, answered by the plugin itself from the same check as its CSI Probe.
 */
export async function startHealthEndpoint(port: number, ready: () => Promise<boolean>): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    if (req.url !== '/healthz') {
      res.writeHead(404).end();
      return;
    }
    ready().then(
      (ok) => res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready: the state or cache directory is not usable\n'),
      () => res.writeHead(503).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve());
  });
  return server;
}

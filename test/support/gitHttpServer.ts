import { spawn } from 'node:child_process';
import http from 'node:http';
import { gunzip } from 'node:zlib';
import { AddressInfo, Server, Socket } from 'node:net';

export interface ServerOptions {
  /** Require HTTP basic auth with these credentials. */
  auth?: { username: string; password: string };
  /** Milliseconds to hold every fetch request before answering (a slow server). */
  fetchDelayMs?: number;
  /** Answer fetch requests (not ref listings) with this HTTP status. */
  rejectFetchesWith?: number;
  /** Act as a server that does not offer object-info (git 2.39 always advertises it). */
  hideObjectInfo?: boolean;
  /** Where to redirect a request for this path (302), or undefined to serve it. */
  redirect?: (path: string) => string | undefined;
  /** Given each object-info or fetch request's count of object ids: a promise holds that request until it settles. */
  hold?: (request: 'object-info' | 'fetch', oids: number) => Promise<void> | undefined;
  /** Called as each request arrives, before it is answered. */
  onRequest?: (path: string, method: string) => void;
}

export interface ServerCounters {
  infoRefs: number;
  uploadPackPosts: number;
  /** Request bodies that asked for object-info. */
  objectInfo: number;
  /** Upload-pack requests that fetched objects. */
  fetches: number;
  bytesOut: number;
  /** How many fetch requests wanted each object id. */
  wants: Map<string, number>;
}

/**
 * A real smart-HTTP git server on loopback: `git http-backend` run as CGI per request,
 * with counters for the tests (requests, fetches, bytes served) and faults to inject.
 */
export class GitHttpServer {
  readonly counters: ServerCounters = { infoRefs: 0, uploadPackPosts: 0, objectInfo: 0, fetches: 0, bytesOut: 0, wants: new Map() };
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private port_ = 0;
  /** Answer the next N requests with this HTTP status instead of serving them. */
  failNext: { count: number; status: number } = { count: 0, status: 500 };

  constructor(readonly projectRoot: string, readonly options: ServerOptions = {}) {}

  get port(): number {
    return this.port_;
  }

  url(repo: string, userinfo = ''): string {
    return `http://${userinfo ? `${userinfo}@` : ''}127.0.0.1:${this.port_}/${repo}`;
  }

  /** Runs `work` against a slow server: every fetch request is held `ms` first. */
  async withFetchDelay<T>(ms: number, work: () => Promise<T>): Promise<T> {
    this.options.fetchDelayMs = ms;
    try {
      return await work();
    } finally {
      this.options.fetchDelayMs = undefined;
    }
  }

  resetCounters(): void {
    Object.assign(this.counters, { infoRefs: 0, uploadPackPosts: 0, objectInfo: 0, fetches: 0, bytesOut: 0, wants: new Map() });
  }

  async start(port = this.port_): Promise<void> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port_ = (server.address() as AddressInfo).port;
  }

  /** Serves the connections another listener accepts too (one in a test's network namespace). */
  serveOn(listener: Server): void {
    listener.on('connection', (socket: Socket) => this.server!.emit('connection', socket));
  }

  /** Stops at once, cutting connections mid-transfer, as a killed server would. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://localhost');
    this.options.onRequest?.(url.pathname, req.method ?? 'GET');
    const location = this.options.redirect?.(url.pathname + url.search);
    if (location) {
      req.resume();
      res.writeHead(302, { Location: location });
      res.end();
      return;
    }
    if (this.options.auth) {
      const expected = `Basic ${Buffer.from(`${this.options.auth.username}:${this.options.auth.password}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' });
        res.end('unauthorized');
        return;
      }
    }
    if (this.failNext.count > 0) {
      this.failNext.count--;
      req.resume();
      res.writeHead(this.failNext.status);
      res.end('injected failure');
      return;
    }
    const isPost = req.method === 'POST';
    if (url.pathname.endsWith('/info/refs')) this.counters.infoRefs++;
    if (isPost && url.pathname.endsWith('/git-upload-pack')) this.counters.uploadPackPosts++;

    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c));
    req.on('end', () => {
      const input = Buffer.concat(body);
      // git compresses large request bodies; look inside them to count what was asked.
      const inspect = (plain: Buffer) => {
        const text = plain.toString('latin1');
        const isFetch = text.includes('command=fetch') || /^[0-9a-f]{4}want /m.test(text);
        const objectInfo = text.includes('command=object-info');
        if (objectInfo) this.counters.objectInfo++;
        if (isFetch) {
          this.counters.fetches++;
          for (const [, oid] of text.matchAll(/want ([0-9a-f]{40,64})/g)) this.counters.wants.set(oid, (this.counters.wants.get(oid) ?? 0) + 1);
        }
        if (isFetch && this.options.rejectFetchesWith) {
          res.writeHead(this.options.rejectFetchesWith);
          res.end('rejected by the test');
          return;
        }
        const run = () => this.runBackend(req, res, url, input);
        const held = objectInfo || isFetch ? this.options.hold?.(objectInfo ? 'object-info' : 'fetch', text.match(objectInfo ? /oid [0-9a-f]/g : /want [0-9a-f]/g)?.length ?? 0) : undefined;
        if (held) void held.then(run);
        else if (isFetch && this.options.fetchDelayMs) setTimeout(run, this.options.fetchDelayMs);
        else run();
      };
      if (req.headers['content-encoding'] === 'gzip') gunzip(input, (err, plain) => inspect(err ? input : plain));
      else inspect(input);
    });
  }

  private runBackend(req: http.IncomingMessage, res: http.ServerResponse, url: URL, input: Buffer): void {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: this.projectRoot,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.replace(/^\?/, ''),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      CONTENT_LENGTH: String(input.length),
      REMOTE_ADDR: '127.0.0.1',
      REMOTE_USER: this.options.auth?.username ?? '',
      GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
      HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
      HTTP_GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
    };
    const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    // A request it answers without reading its body (info/refs) may find the backend gone: not an error.
    cgi.stdin.on('error', () => undefined);
    let headerDone = false;
    let pending = Buffer.alloc(0);
    if (this.options.hideObjectInfo && url.pathname.endsWith('/info/refs')) {
      const out: Buffer[] = [];
      cgi.stdout.on('data', (chunk: Buffer) => out.push(chunk));
      cgi.on('close', () => {
        const whole = Buffer.concat(out);
        const split = whole.indexOf('\r\n\r\n');
        const headers = whole.subarray(0, split).toString('latin1').split('\r\n').filter((l) => !/^(status|content-length):/i.test(l));
        for (const line of headers) res.setHeader(line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim());
        res.end(Buffer.from(whole.subarray(split + 4).toString('latin1').replace('0010object-info\n', ''), 'latin1'));
      });
      cgi.stdin.end(input);
      return;
    }
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headerDone) {
        this.counters.bytesOut += chunk.length;
        res.write(chunk);
        return;
      }
      pending = Buffer.concat([pending, chunk]);
      const end = pending.indexOf('\r\n\r\n');
      if (end < 0) return;
      headerDone = true;
      let status = 200;
      for (const line of pending.subarray(0, end).toString('latin1').split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = parseInt(value, 10);
        else res.setHeader(name, value);
      }
      res.statusCode = status;
      const rest = pending.subarray(end + 4);
      this.counters.bytesOut += rest.length;
      res.write(rest);
    });
    cgi.on('close', () => res.end());
    cgi.on('error', () => res.destroy());
    res.on('close', () => cgi.kill('SIGKILL'));
    cgi.stdin.end(input);
  }
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
}

export type Handler = (req: IncomingMessage, res: ServerResponse, hit: number) => void;

/**
 * A real HTTP server on 127.0.0.1 with per-path handlers. `hit` counts requests to the path (from 1), so
 * a route can fail twice and then succeed. Every request is recorded for assertions.
 */
export class TestServer {
  readonly requests: RecordedRequest[] = [];
  private readonly routes = new Map<string, Handler>();
  private fallbackHandler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  private readonly hits = new Map<string, number>();
  private readonly sockets = new Set<import('node:net').Socket>();
  private constructor(private readonly server: Server) {}

  static async start(t: TestContext): Promise<TestServer> {
    const server = createServer();
    const ts = new TestServer(server);
    server.on('connection', (s) => {
      ts.sockets.add(s);
      s.on('close', () => ts.sockets.delete(s));
    });
    server.on('request', (req, res) => ts.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => ts.close());
    return ts;
  }

  get base(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  url(path: string): string {
    return `${this.base}${path}`;
  }

  route(path: string, handler: Handler): this {
    this.routes.set(path, handler);
    return this;
  }

  /** Serves fixed bytes with a Content-Length. */
  file(path: string, body: Buffer | string, contentType = 'application/octet-stream'): this {
    return this.route(path, (_req, res) => {
      const buf = Buffer.from(body);
      res.writeHead(200, { 'content-type': contentType, 'content-length': buf.length });
      res.end(buf);
    });
  }

  /** Answers every path that has no route of its own. */
  fallback(handler: (req: IncomingMessage, res: ServerResponse) => void): this {
    this.fallbackHandler = handler;
    return this;
  }

  hitsOf(path: string): number {
    return this.hits.get(path) ?? 0;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] as string;
    this.requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers });
    const hit = (this.hits.get(path) ?? 0) + 1;
    this.hits.set(path, hit);
    const handler = this.routes.get(path);
    if (!handler && this.fallbackHandler) return this.fallbackHandler(req, res);
    if (!handler) {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<html><body>404 page not found</body></html>');
      return;
    }
    handler(req, res, hit);
  }
}

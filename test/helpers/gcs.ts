import { createHash } from 'node:crypto';
import type { TestContext } from 'node:test';
import { TestServer } from './http.js';

/**
 * A small Google Cloud Storage JSON API on 127.0.0.1 (what STORAGE_EMULATOR_HOST points Google's clients
 * at): object metadata at /storage/v1/b/BUCKET/o/OBJECT and the bytes with ?alt=media, a generation per
 * upload, 404 for what is not there. `failNext` makes the next media requests answer 503.
 */
export class TestGcs {
  private readonly objects = new Map<string, { body: Buffer; generation: number }>();
  private generation = 1000;
  failNext = 0;
  /** Every request's `authorization` header, in order. */
  readonly authorizations: (string | undefined)[] = [];

  private constructor(readonly server: TestServer) {}

  static async start(t: TestContext): Promise<TestGcs> {
    const server = await TestServer.start(t);
    const gcs = new TestGcs(server);
    server.fallback((req, res) => gcs.handle(req.url ?? '/', req.headers.authorization, res));
    return gcs;
  }

  /** host:port, as STORAGE_EMULATOR_HOST takes it. */
  get host(): string {
    return this.server.base.replace(/^http:\/\//, '');
  }

  put(bucket: string, object: string, body: Buffer | string): void {
    this.objects.set(`${bucket}/${object}`, { body: Buffer.from(body), generation: ++this.generation });
  }

  mediaRequests(bucket: string, object: string): number {
    return this.server.requests.filter((r) => r.url === `/storage/v1/b/${bucket}/o/${encodeURIComponent(object)}?alt=media`).length;
  }

  private handle(url: string, authorization: string | undefined, res: import('node:http').ServerResponse): void {
    this.authorizations.push(authorization);
    const m = /^\/storage\/v1\/b\/([^/]+)\/o\/([^?]+)(\?alt=media)?$/.exec(url);
    const found = m ? this.objects.get(`${decodeURIComponent(m[1] as string)}/${decodeURIComponent(m[2] as string)}`) : undefined;
    if (m?.[3] && this.failNext > 0) {
      this.failNext--;
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":{"code":503,"message":"backend error"}}');
      return;
    }
    if (!m || !found) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":{"code":404,"message":"No such object"}}');
      return;
    }
    if (m[3]) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': found.body.length, 'x-goog-generation': String(found.generation) });
      res.end(found.body);
      return;
    }
    const meta = { name: decodeURIComponent(m[2] as string), size: String(found.body.length), generation: String(found.generation), md5Hash: createHash('md5').update(found.body).digest('base64') };
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(meta));
  }
}

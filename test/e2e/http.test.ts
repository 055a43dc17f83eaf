import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { listTree, Scenario } from '../helpers/scenario.js';
import { TestServer } from '../helpers/http.js';
import { sha1, tar, tgz } from '../helpers/tar.js';

const ARCHIVE = tar([{ path: 'index.html', body: '<h1>v2</h1>' }]);

function manifestFor(s: Scenario, src: string, body: Buffer = ARCHIVE, extra = ''): string {
  return `src: ${src}\nchecksum: ${sha1(body)}\ndest: ${s.dest}\n${extra}`;
}

test('http: relative src beside the manifest; User-Agent stretcher/<version>; no compression asked', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  srv.file('/app/manifest.yml', manifestFor(s, 'app.tar')).file('/app/app.tar', ARCHIVE);
  const r = await s.run(srv.url('/app/manifest.yml'));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['index.html']);
  assert.deepEqual(
    srv.requests.map((q) => q.url),
    ['/app/manifest.yml', '/app/app.tar'],
  );
  for (const q of srv.requests) {
    assert.match(q.headers['user-agent'] ?? '', /^stretcher\/\d+\.\d+\.\d+$/);
    assert.equal(q.headers['accept-encoding'], undefined);
  }
});

test('http: a 404 manifest is an error naming the status (Go parsed the error page as YAML)', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  const r = await s.run(srv.url('/missing.yml'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /HTTP 404 Not Found from http:\/\/127\.0\.0\.1:\d+\/missing\.yml/);
  assert.equal(srv.hitsOf('/missing.yml'), 1, '4xx are final: no retry');
});

test('http: a 404 archive fails before pre, without retries even with --retry', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  srv.file('/m.yml', manifestFor(s, 'gone.tar', ARCHIVE, `commands:\n  pre: ["touch ${s.out}/pre"]\n`));
  const r = await s.run(srv.url('/m.yml'), { args: ['--retry=3', '--retry-wait=10ms'] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /HTTP 404 Not Found from \S+\/gone\.tar/);
  assert.equal(srv.hitsOf('/gone.tar'), 1);
  assert.deepEqual(s.leftovers(), []);
});

test('http: 5xx then success is retried, for the manifest and the archive', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  const flaky = (body: string | Buffer, failures: number) => (_req: unknown, res: import('node:http').ServerResponse, hit: number) => {
    if (hit <= failures) {
      res.writeHead(hit === 1 ? 503 : 502);
      res.end('busy');
      return;
    }
    res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  srv.route('/m.yml', flaky(manifestFor(s, 'a.tar'), 1)).route('/a.tar', flaky(ARCHIVE, 2));
  const r = await s.run(srv.url('/m.yml'), { args: ['-retry', '3', '-retry-wait', '10ms'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(srv.hitsOf('/m.yml'), 2);
  assert.equal(srv.hitsOf('/a.tar'), 3);
  assert.match(r.stderr, /HTTP 503 Service Unavailable from \S+\/a\.tar; retrying in 10ms \(attempt 2 of 4\)/);
  assert.deepEqual(listTree(s.dest), ['index.html']);
});

test('http: retries run out with a message that says so', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  srv.route('/m.yml', (_q, res) => {
    res.writeHead(500);
    res.end();
  });
  const r = await s.run(srv.url('/m.yml'), { args: ['--retry=2', '--retry-wait=1ms'] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /HTTP 500 Internal Server Error from \S+ \(gave up after 3 attempts\)/);
  assert.equal(srv.hitsOf('/m.yml'), 3);
});

test('http: 429 with Retry-After is honoured over a shorter --retry-wait', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  const times: number[] = [];
  srv.file('/m.yml', manifestFor(s, 'a.tar')).route('/a.tar', (_q, res, hit) => {
    times.push(Date.now());
    if (hit === 1) {
      res.writeHead(429, { 'retry-after': '1' });
      res.end();
      return;
    }
    res.end(ARCHIVE);
  });
  const r = await s.run(srv.url('/m.yml'), { args: ['--retry=1', '--retry-wait=1ms'] });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /HTTP 429 Too Many Requests from \S+; retrying in 1s/);
  assert.ok((times[1] as number) - (times[0] as number) >= 900, 'waited for Retry-After');
});

test('http: a body cut off mid-way is retried, and the deploy uses the whole body', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  const big = tgz([{ path: 'blob', body: randomBytes(300_000) }]);
  srv.file('/m.yml', manifestFor(s, 'a.tgz', big)).route('/a.tgz', (_q, res, hit) => {
    res.writeHead(200, { 'content-length': big.length });
    if (hit === 1) {
      res.write(big.subarray(0, 100_000));
      setTimeout(() => res.socket?.destroy(), 50);
      return;
    }
    res.end(big);
  });
  const r = await s.run(srv.url('/m.yml'), { args: ['--retry=2', '--retry-wait=10ms'] });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /broke off|ended after/);
  assert.equal(srv.hitsOf('/a.tgz'), 2);
  assert.deepEqual(listTree(s.dest), ['blob']);
});

test('http: a body shorter than Content-Length is never deployed', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  srv.file('/m.yml', manifestFor(s, 'a.tar', ARCHIVE, `commands:\n  pre: ["touch ${s.out}/pre"]\n`)).route('/a.tar', (_q, res) => {
    res.writeHead(200, { 'content-length': ARCHIVE.length + 1000 });
    res.end(ARCHIVE);
  });
  const r = await s.run(srv.url('/m.yml'), { args: ['--retry=1', '--retry-wait=1ms'] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /a\.tar/);
  assert.equal(srv.hitsOf('/a.tar'), 2, 'retried once');
  assert.deepEqual(s.leftovers(), []);
});

test('http: a stalled server is cut off by --timeout, with failure commands and no temp files', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  srv.file('/m.yml', manifestFor(s, 'a.tar', ARCHIVE, `commands:\n  failure: ["cat > ${s.out}/failure.stdin"]\n`)).route('/a.tar', (_q, res) => {
    res.writeHead(200, { 'content-length': ARCHIVE.length });
    res.write(ARCHIVE.subarray(0, 512));
  });
  const started = Date.now();
  const r = await s.run(srv.url('/m.yml'), { args: ['--timeout=1s', '--retry=5', '--retry-wait=10ms'] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /downloading \S+a\.tar timed out after 1s \(--timeout\)/);
  assert.ok(Date.now() - started < 20_000, 'sanity bound');
  assert.deepEqual(s.leftovers(), []);
});

test('http: redirects are followed; a redirect loop is a clear, final error', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  srv
    .route('/moved.yml', (_q, res) => {
      res.writeHead(302, { location: '/real/m.yml' });
      res.end();
    })
    .file('/real/m.yml', manifestFor(s, 'a.tar'))
    .file('/real/a.tar', ARCHIVE)
    .route('/loop', (_q, res) => {
      res.writeHead(301, { location: '/loop' });
      res.end();
    });
  const ok = await s.run(srv.url('/moved.yml'));
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(
    srv.requests.some((q) => q.url === '/real/a.tar'),
    'relative src resolves against the final URL, as a browser would',
  );
  const loop = await s.run(srv.url('/loop'), { args: ['--retry=3', '--retry-wait=1ms'] });
  assert.equal(loop.code, 1);
  assert.match(loop.stderr, /too many redirects fetching \S+\/loop/);
});

test('http: user:pass@ becomes Basic auth, and the password never reaches logs or hooks', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  const expected = `Basic ${Buffer.from('deploy:s3cr3t-pw').toString('base64')}`;
  const guarded = (body: string | Buffer) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    if (req.headers.authorization !== expected) {
      res.writeHead(401);
      res.end();
      return;
    }
    res.end(body);
  };
  const authed = srv.base.replace('http://', 'http://deploy:s3cr3t-pw@');
  srv.route('/m.yml', guarded(manifestFor(s, 'a.tar', ARCHIVE, `commands:\n  success: ["cat > ${s.out}/log; env > ${s.out}/env"]\n`)));
  srv.route('/a.tar', guarded(ARCHIVE));
  const r = await s.run(`${authed}/m.yml?X-Amz-Signature=abcdef123&keep=1`);
  assert.equal(r.code, 0, r.stderr);
  const { readFileSync } = await import('node:fs');
  for (const text of [
    r.stderr,
    readFileSync(`${s.out}/log`, 'utf8'),
    readFileSync(`${s.out}/env`, 'utf8'),
    readFileSync(`${s.state}/deploys/${(await import('node:fs')).readdirSync(`${s.state}/deploys`)[0]}`, 'utf8'),
  ]) {
    assert.doesNotMatch(text, /s3cr3t-pw/);
    assert.doesNotMatch(text, /abcdef123/);
  }
  assert.match(r.stderr, /deploy:REDACTED@/);
});

test('http: a manifest far too large is refused with a clear error', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  srv.file('/huge.yml', `# ${'x'.repeat(2 * 1024 * 1024)}\n`);
  srv.route('/huge-chunked.yml', (_q, res) => {
    res.writeHead(200);
    for (let i = 0; i < 40; i++) res.write('#'.repeat(64 * 1024) + '\n');
    res.end();
  });
  const r = await s.run(srv.url('/huge.yml'));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /manifest \S+ is 2\.10 MB; the limit is 1 MiB/);
  const chunked = await s.run(srv.url('/huge-chunked.yml'));
  assert.equal(chunked.code, 1);
  assert.match(chunked.stderr, /larger than the limit of 1 MiB/);
});

test('--max-bandwidth throttles the archive download', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  const body = tgz([{ path: 'blob', body: randomBytes(200_000) }]);
  srv.file('/m.yml', manifestFor(s, 'a.tgz', body)).file('/a.tgz', body);
  const started = Date.now();
  const r = await s.run(srv.url('/m.yml'), { args: ['-max-bandwidth', '200k'] });
  const elapsed = Date.now() - started;
  assert.equal(r.code, 0, r.stderr);
  // 200 kB at 200 kB/s with a 20 kB burst: at least ~0.9 s; generous, this is not a timing test.
  assert.ok(elapsed >= 800, `took ${elapsed}ms`);
});

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TestServer } from '../helpers/http.js';
import { listTree, Scenario } from '../helpers/scenario.js';
import { sha1, tar } from '../helpers/tar.js';

test("http: HTTP_PROXY carries the manifest and archive requests, as Go stretcher's did", async (t) => {
  const s = new Scenario(t);
  const origin = await TestServer.start(t);
  const archive = tar([{ path: 'through-proxy' }]);
  origin.file('/m.yml', `src: a.tar\nchecksum: ${sha1(archive)}\ndest: ${s.dest}\n`).file('/a.tar', archive);
  const originPort = Number(new URL(origin.base).port);
  // A forward proxy on 127.0.0.1 that knows "deploy.test" as the origin server: stretcher cannot resolve
  // that name itself, so the deploy can only succeed through the proxy.
  const seen: string[] = [];
  const proxy = createServer((req, res) => {
    seen.push(req.url ?? '');
    const target = new URL(req.url ?? '');
    const upstream = request({ host: '127.0.0.1', port: originPort, path: target.pathname, method: req.method, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.after(() => proxy.close());
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const r = await s.run(`http://deploy.test:${originPort}/m.yml`, { env: { HTTP_PROXY: proxyUrl } });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['through-proxy']);
  assert.deepEqual(seen, [`http://deploy.test:${originPort}/m.yml`, `http://deploy.test:${originPort}/a.tar`]);
});

test('https: HTTPS_PROXY tunnels the manifest and archive requests through CONNECT', async (t) => {
  const s = new Scenario(t);
  // A certificate for "deploy.test", trusted by the deploy through NODE_EXTRA_CA_CERTS.
  const certs = mkdtempSync(join(tmpdir(), 'stretcher-tls-'));
  t.after(() => rmSync(certs, { recursive: true, force: true }));
  const key = join(certs, 'key.pem');
  const cert = join(certs, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=deploy.test',
      '-addext',
      'subjectAltName=DNS:deploy.test',
    ],
    { stdio: 'ignore' },
  );
  const archive = tar([{ path: 'through-tunnel' }]);
  const files = new Map<string, string | Buffer>([
    ['/m.yml', `src: a.tar\nchecksum: ${sha1(archive)}\ndest: ${s.dest}\n`],
    ['/a.tar', archive],
  ]);
  const origin = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
    const body = files.get(req.url ?? '');
    res.writeHead(body === undefined ? 404 : 200).end(body);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  t.after(() => origin.close());
  const originPort = (origin.address() as AddressInfo).port;
  // A CONNECT proxy that knows "deploy.test" as the origin: stretcher cannot resolve the name itself.
  const tunnels: string[] = [];
  const proxy = createServer((_req, res) => res.writeHead(405).end());
  proxy.on('connect', (req, client) => {
    tunnels.push(req.url ?? '');
    const upstream = connect(originPort, '127.0.0.1', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(client).pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.after(() => proxy.close());
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const r = await s.run(`https://deploy.test:${originPort}/m.yml`, { env: { HTTPS_PROXY: proxyUrl, NODE_EXTRA_CA_CERTS: cert } });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['through-tunnel']);
  assert.ok(tunnels.length >= 1 && tunnels.every((u) => u === `deploy.test:${originPort}`), tunnels.join(', '));
});

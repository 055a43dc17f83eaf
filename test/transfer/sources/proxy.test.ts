import assert from 'node:assert/strict';
import { test } from 'node:test';
import { proxyFor } from '../../../src/transfer/sources/proxy.js';

const u = (s: string) => new URL(s);

test("proxy choice follows Go's ProxyFromEnvironment", () => {
  const env = { HTTP_PROXY: 'proxy:3128', HTTPS_PROXY: 'http://secure-proxy:3129', NO_PROXY: '.internal, example.org, 10.0.0.5, bucket.test:8080' };
  assert.equal(proxyFor(u('http://deploy.example.com/m.yml'), env), 'http://proxy:3128');
  assert.equal(proxyFor(u('https://deploy.example.com/m.yml'), env), 'http://secure-proxy:3129');
  assert.equal(proxyFor(u('s3://bucket/key'), env), 'http://secure-proxy:3129');
  assert.equal(proxyFor(u('http://a.b.internal/x'), env), undefined);
  assert.equal(proxyFor(u('http://example.org/x'), env), undefined);
  assert.equal(proxyFor(u('http://www.example.org/x'), env), undefined);
  assert.equal(proxyFor(u('http://notexample.org/x'), env), 'http://proxy:3128');
  assert.equal(proxyFor(u('http://10.0.0.5/x'), env), undefined);
  assert.equal(proxyFor(u('http://bucket.test:8080/x'), env), undefined);
  assert.equal(proxyFor(u('http://bucket.test:9090/x'), env), 'http://proxy:3128');
  assert.equal(proxyFor(u('http://localhost:8080/x'), env), undefined, 'loopback is never proxied');
  assert.equal(proxyFor(u('http://127.0.0.1:8080/x'), env), undefined);
  assert.equal(proxyFor(u('http://[::1]:8080/x'), env), undefined);
  assert.equal(proxyFor(u('http://x.com/'), { http_proxy: 'http://lower:1' }), 'http://lower:1');
  assert.equal(proxyFor(u('http://x.com/'), { HTTP_PROXY: 'http://p:1', NO_PROXY: '*' }), undefined);
  assert.equal(proxyFor(u('http://x.com/'), {}), undefined);
});

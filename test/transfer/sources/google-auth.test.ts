import assert from 'node:assert/strict';
import { createVerify, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { TestServer } from '../../helpers/http.js';
import { tempDir } from '../../helpers/tmp.js';

// Each test loads the module afresh: it caches the token for the process, as a deploy should.
const fresh = async () => (await import(`../../../src/transfer/sources/google-auth.js?${Math.random()}`)) as typeof import('../../../src/transfer/sources/google-auth.js');
const signal = new AbortController().signal;

test('google auth: a service account key becomes a token through a signed JWT at its token_uri', async (t) => {
  const srv = await TestServer.start(t);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  let assertion = '';
  srv.route('/token', (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const form = new URLSearchParams(body);
      assert.equal(form.get('grant_type'), 'urn:ietf:params:oauth:grant-type:jwt-bearer');
      assertion = form.get('assertion') ?? '';
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: 'ya29.service', expires_in: 3600, token_type: 'Bearer' }));
    });
  });
  const dir = tempDir(t);
  const file = path.join(dir, 'key.json');
  writeFileSync(
    file,
    JSON.stringify({ type: 'service_account', client_email: 'deployer@proj.iam.gserviceaccount.com', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }), token_uri: srv.url('/token') }),
  );
  const { googleAccessToken } = await fresh();
  assert.equal(await googleAccessToken({ GOOGLE_APPLICATION_CREDENTIALS: file }, signal), 'ya29.service');
  const [header, claims, sig] = assertion.split('.') as [string, string, string];
  assert.ok(createVerify('RSA-SHA256').update(`${header}.${claims}`).verify(publicKey, Buffer.from(sig, 'base64url')), 'the JWT is signed with the key');
  const c = JSON.parse(Buffer.from(claims, 'base64url').toString()) as Record<string, unknown>;
  assert.equal(c.iss, 'deployer@proj.iam.gserviceaccount.com');
  assert.equal(c.aud, srv.url('/token'));
  assert.equal(c.scope, 'https://www.googleapis.com/auth/devstorage.read_only');
  // Cached: a second request in the same process does not ask again.
  assert.equal(await googleAccessToken({ GOOGLE_APPLICATION_CREDENTIALS: file }, signal), 'ya29.service');
  assert.equal(srv.hitsOf('/token'), 1);
});

test('google auth: gcloud user credentials are refreshed; the metadata server is the last resort', async (t) => {
  const srv = await TestServer.start(t);
  srv.route('/token', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: 'ya29.user', expires_in: 3600 }));
  });
  srv.route('/computeMetadata/v1/instance/service-accounts/default/token', (req, res) => {
    assert.equal(req.headers['metadata-flavor'], 'Google');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ access_token: 'ya29.instance', expires_in: 3600 }));
  });
  const dir = tempDir(t);
  writeFileSync(
    path.join(dir, 'application_default_credentials.json'),
    JSON.stringify({ type: 'authorized_user', client_id: 'id', client_secret: 'secret', refresh_token: 'refresh', token_uri: srv.url('/token') }),
  );
  assert.equal(await (await fresh()).googleAccessToken({ CLOUDSDK_CONFIG: dir }, signal), 'ya29.user');
  const empty = tempDir(t);
  assert.equal(await (await fresh()).googleAccessToken({ CLOUDSDK_CONFIG: empty, GCE_METADATA_HOST: srv.base.replace('http://', '') }, signal), 'ya29.instance');
  await assert.rejects((await fresh()).googleAccessToken({ CLOUDSDK_CONFIG: empty, GCE_METADATA_HOST: '127.0.0.1:1' }, signal), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'TRANSFER_FAILED');
    assert.match(err.message, /no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS/);
    return true;
  });
});

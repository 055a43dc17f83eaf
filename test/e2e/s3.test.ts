import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { listTree, Scenario } from '../helpers/scenario.js';
import { TestServer } from '../helpers/http.js';
import { S3_KEY, S3_SECRET, TestS3 } from '../helpers/s3.js';
import { sha1, tgz } from '../helpers/tar.js';

const ARCHIVE = tgz([
  { path: 'app.js', body: 'console.log(1)' },
  { path: 'public/', type: 'dir' },
  { path: 'public/index.html', body: 'hi' },
]);

async function bucketWithRelease(t: import('node:test').TestContext, s: Scenario): Promise<TestS3> {
  const s3 = await TestS3.start(t, ['releases']);
  await s3.put('releases', 'app/v1/app.tar.gz', ARCHIVE);
  await s3.put('releases', 'app/v1/manifest.yml', `src: app.tar.gz\nchecksum: ${sha1(ARCHIVE)}\ndest: ${s.dest}\ncommands:\n  post: ["echo deployed from $STRETCHER_SRC"]\n`);
  return s3;
}

test('s3: credentials and region from the environment; relative src beside the manifest', async (t) => {
  const s = new Scenario(t);
  const s3 = await bucketWithRelease(t, s);
  const r = await s.run('s3://releases/app/v1/manifest.yml\n', {
    env: { AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET, AWS_DEFAULT_REGION: 'eu-west-1', AWS_ENDPOINT_URL_S3: s3.endpoint },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['app.js', 'public/', 'public/index.html']);
  assert.match(r.stderr, /deployed from s3:\/\/releases\/app\/v1\/app\.tar\.gz/);
  assert.doesNotMatch(r.stderr, /NodeVersionSupport|Node\.js version/i, 'no SDK warning about Node 20');
});

test('s3: credentials from a shared credentials file and a profile (AWS_PROFILE and Go-era AWS_DEFAULT_PROFILE)', async (t) => {
  const s = new Scenario(t);
  const s3 = await bucketWithRelease(t, s);
  const credentials = path.join(s.root, 'credentials');
  writeFileSync(credentials, `[default]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n\n[deployer]\naws_access_key_id = ${S3_KEY}\naws_secret_access_key = ${S3_SECRET}\n`);
  const config = path.join(s.root, 'config');
  writeFileSync(config, '[profile deployer]\nregion = ap-northeast-1\n');
  for (const profileVar of ['AWS_PROFILE', 'AWS_DEFAULT_PROFILE']) {
    const r = await s.run('s3://releases/app/v1/manifest.yml', {
      env: { AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_CONFIG_FILE: config, [profileVar]: 'deployer', AWS_ENDPOINT_URL: s3.endpoint },
    });
    assert.equal(r.code, 0, `${profileVar}: ${r.stderr}`);
  }
  assert.deepEqual(listTree(s.dest), ['app.js', 'public/', 'public/index.html']);
});

test('s3: a missing key, a missing bucket and bad credentials each end in one line that says which', async (t) => {
  const s = new Scenario(t);
  const s3 = await bucketWithRelease(t, s);
  const env = { AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: s3.endpoint };
  const cases: [string, NodeJS.ProcessEnv, RegExp][] = [
    ['s3://releases/app/v9/manifest.yml', env, /s3:\/\/releases\/app\/v9\/manifest\.yml: no such key in bucket releases/],
    ['s3://nobucket/app/manifest.yml', env, /s3:\/\/nobucket\/app\/manifest\.yml: bucket nobucket does not exist/],
    ['s3://releases/app/v1/manifest.yml', { ...env, AWS_ACCESS_KEY_ID: 'AKIAWRONGWRONGWRONG1' }, /AWS access key ID is not recognised by the server \(bad credentials\)/],
  ];
  for (const [url, e, expected] of cases) {
    const r = await s.run(url, { env: e, args: ['--retry=2', '--retry-wait=1ms'] });
    assert.equal(r.code, 1, url);
    const errors = r.stderr.split('\n').filter((l) => / ERROR: /.test(l));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0] as string, expected);
    assert.doesNotMatch(r.stderr, /retrying/, 'client errors are final');
  }
});

test('s3: a wrong secret key (SignatureDoesNotMatch) is a final, one-line error that never shows the secret', async (t) => {
  // s3rver does not check SigV4 signatures, so this server answers as S3 does when the secret is wrong.
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  srv.route('/releases/app/manifest.yml', (_q, res) => {
    res.writeHead(403, { 'content-type': 'application/xml', 'x-amz-request-id': 'TEST' });
    res.end(
      '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message><RequestId>TEST</RequestId></Error>',
    );
  });
  const r = await s.run('s3://releases/app/manifest.yml', {
    env: { AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: 'wrong-secret', AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: srv.base },
    args: ['--retry=2', '--retry-wait=1ms'],
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ERROR: deploy failed: s3:\/\/releases\/app\/manifest\.yml: the AWS secret key does not match the access key ID \(bad credentials\)/);
  assert.equal(srv.hitsOf('/releases/app/manifest.yml'), 1);
  assert.doesNotMatch(r.stderr, /wrong-secret/);
});

test('s3: the SDK is not loaded for file:// deploys', async (t) => {
  const s = new Scenario(t);
  s.manifest('commands:\n  pre: ["true"]\n');
  const r = await s.run(`${s.root}/manifest.yml`, { env: { NODE_DEBUG: 'module' } });
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /@aws-sdk/);
  assert.ok(readFileSync(path.join(s.root, 'manifest.yml')));
});

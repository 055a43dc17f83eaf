import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { TestGcs } from '../helpers/gcs.js';
import { listTree, Scenario } from '../helpers/scenario.js';
import { sha1, tgz } from '../helpers/tar.js';
import { until } from '../helpers/wait.js';

const ARCHIVE = tgz([
  { path: 'app.js', body: 'console.log(1)' },
  { path: 'public/', type: 'dir' },
  { path: 'public/index.html', body: 'hi' },
]);

async function bucket(t: import('node:test').TestContext, s: Scenario): Promise<TestGcs> {
  const gcs = await TestGcs.start(t);
  gcs.put('releases', 'app/v1/app.tar.gz', ARCHIVE);
  gcs.put('releases', 'app/v1/manifest.yml', `src: app.tar.gz\nchecksum: ${sha1(ARCHIVE)}\ndest: ${s.dest}\ncommands:\n  post: ["echo deployed from $STRETCHER_SRC"]\n`);
  return gcs;
}

test('gs: manifest and archive from a GCS JSON API server (STORAGE_EMULATOR_HOST), relative src beside the manifest', async (t) => {
  const s = new Scenario(t);
  const gcs = await bucket(t, s);
  const r = await s.run('gs://releases/app/v1/manifest.yml\n', { env: { STORAGE_EMULATOR_HOST: gcs.host } });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['app.js', 'public/', 'public/index.html']);
  assert.match(r.stderr, /deployed from gs:\/\/releases\/app\/v1\/app\.tar\.gz/);
  assert.ok(
    gcs.authorizations.every((a) => a === undefined),
    'an emulator gets no credentials',
  );
});

test('gs: a 503 is retried as for s3; a missing object is final and says which', async (t) => {
  const s = new Scenario(t);
  const gcs = await bucket(t, s);
  gcs.failNext = 2;
  const r = await s.run('gs://releases/app/v1/manifest.yml', { env: { STORAGE_EMULATOR_HOST: `http://${gcs.host}` }, args: ['--retry=3', '--retry-wait=10ms'] });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /gs:\/\/releases\/app\/v1\/manifest\.yml: HTTP 503; retrying in 10ms \(attempt 2 of 4\)/);
  const missing = await s.run('gs://releases/app/v9/manifest.yml', { env: { STORAGE_EMULATOR_HOST: gcs.host }, args: ['--retry=3', '--retry-wait=10ms'] });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /ERROR: deploy failed: gs:\/\/releases\/app\/v9\/manifest\.yml: no such bucket or object$/m);
  assert.doesNotMatch(missing.stderr, /retrying/, 'a 404 is not retried');
});

test('gs: watch polls the object metadata and redeploys when its generation changes', async (t) => {
  const s = new Scenario(t);
  const gcs = await bucket(t, s);
  let pid = 0;
  const watch = s.run('', { args: ['watch', 'gs://releases/app/v1/manifest.yml', '--interval=1s', '--jitter=0'], env: { STORAGE_EMULATOR_HOST: gcs.host }, onSpawn: (p) => (pid = p) });
  await until(() => existsSync(s.dest) && listTree(s.dest).length === 3, 'the first deploy');
  const v2 = tgz([{ path: 'v2.txt', body: 'two' }]);
  gcs.put('releases', 'app/v1/v2.tar.gz', v2);
  gcs.put('releases', 'app/v1/manifest.yml', `src: v2.tar.gz\nchecksum: ${sha1(v2)}\ndest: ${s.dest}\n`);
  await until(() => listTree(s.dest).join() === 'v2.txt', 'the redeploy after the object changed');
  process.kill(pid, 'SIGTERM');
  const r = await watch;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(gcs.mediaRequests('releases', 'app/v1/manifest.yml'), 2, 'the manifest body was fetched once per version; polls read metadata only');
});

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestServer } from '../helpers/http.js';
import { listTree, Scenario } from '../helpers/scenario.js';
import { sha1, tar } from '../helpers/tar.js';
import { until } from '../helpers/wait.js';

/** A manifest endpoint whose content the test changes; it answers If-None-Match with 304 like a real server. */
function manifestEndpoint(srv: TestServer, route: string): { set: (body: string) => void; conditionalHits: () => number } {
  let body = '';
  let etag = '';
  let conditional = 0;
  srv.route(route, (req, res) => {
    if (req.headers['if-none-match']) conditional++;
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    res.writeHead(200, { etag, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  return {
    set: (b) => {
      body = b;
      etag = `"${sha1(Buffer.from(b))}"`;
    },
    conditionalHits: () => conditional,
  };
}

function version(s: Scenario, srv: TestServer, v: string): string {
  // Distinct mtimes: rsync's quick check skips files whose size and mtime are unchanged.
  const archive = tar([{ path: 'VERSION', body: v, mtime: 1_700_000_000 + Number(v.slice(1)) }]);
  srv.file(`/${v}.tar`, archive);
  return `src: ${v}.tar\nchecksum: ${sha1(archive)}\ndest: ${s.dest}\ncommands:\n  post: ["echo ${v} >> ${s.out}/deployed"]\n  success: ["cat > ${s.out}/success-${v}.log"]\n`;
}

/** The watch's own record says this many distinct manifests were deployed to completion (hooks included). */
function recorded(s: Scenario): string | undefined {
  const dir = path.join(s.state, 'watch');
  if (!existsSync(dir)) return undefined;
  const [file] = readdirSync(dir).filter((f) => f.endsWith('.json'));
  return file ? (JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { deployed_sha256?: string }).deployed_sha256 : undefined;
}

const deployed = (s: Scenario): string[] => (existsSync(`${s.out}/deployed`) ? readFileSync(`${s.out}/deployed`, 'utf8').trim().split('\n') : []);

/** Starts `stretcher watch`, returns a stopper that sends SIGTERM and resolves with the result. */
function startWatch(s: Scenario, url: string, args: string[] = []) {
  let pid = 0;
  const run = s.run('', { args: ['watch', url, '--interval=1s', '--jitter=100ms', ...args], onSpawn: (p) => (pid = p) });
  return {
    stop: async () => {
      process.kill(pid, 'SIGTERM');
      return run;
    },
    run,
  };
}

test('watch: deploys v1, then v2 when the manifest changes, with conditional requests, quiet in between', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  const m = manifestEndpoint(srv, '/m.yml');
  m.set(version(s, srv, 'v1'));
  const w = startWatch(s, srv.url('/m.yml'));
  await until(() => deployed(s).length === 1 && recorded(s) !== undefined, 'v1 recorded');
  await until(() => m.conditionalHits() >= 2, 'polls with If-None-Match');
  const v1 = recorded(s);
  m.set(version(s, srv, 'v2'));
  // Stopping only once the deploy is recorded: a SIGTERM during v2's hooks would (rightly) abort it.
  await until(() => deployed(s).length === 2 && recorded(s) !== undefined && recorded(s) !== v1, 'v2 recorded');
  const r = await w.stop();
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(deployed(s), ['v1', 'v2']);
  assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), 'v2');
  assert.equal((r.stderr.match(/changed: deploying/g) ?? []).length, 2);
  // Unchanged polls print nothing: every line is the start, a deploy's own lines, or the stop.
  assert.doesNotMatch(r.stderr, /not modified|unchanged|polling/i);
  // Each deploy's success commands got that deploy's log only.
  assert.doesNotMatch(readFileSync(`${s.out}/success-v2.log`, 'utf8'), /v1\.tar/);
});

test('watch: a restarted watch does not redeploy what is already deployed', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  manifestEndpoint(srv, '/m.yml').set(version(s, srv, 'v1'));
  const first = startWatch(s, srv.url('/m.yml'));
  // Recorded, not merely past post: a SIGTERM during the hooks aborts the deploy, which then is not "deployed".
  await until(() => recorded(s) !== undefined, 'v1 recorded');
  assert.equal((await first.stop()).code, 0);
  const polled = srv.hitsOf('/m.yml');
  const second = startWatch(s, srv.url('/m.yml'));
  // Not a fixed sleep: the second watch must really have polled, twice, before the check means anything.
  await until(() => srv.hitsOf('/m.yml') >= polled + 2, 'the restarted watch to poll');
  const r = await second.stop();
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(deployed(s), ['v1']);
  assert.doesNotMatch(r.stderr, /deploying/);
});

test('watch: SIGTERM ends it promptly with exit 0', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  manifestEndpoint(srv, '/m.yml').set(`commands:\n  pre: ["true"]\n`);
  let pid = 0;
  let watching = false;
  const run = s.run('', { args: ['watch', srv.url('/m.yml'), '--interval=1h'], onSpawn: (p) => (pid = p), onStderr: (text) => (watching ||= /watching /.test(text)) });
  // Once it says so, its signal handlers are in place (a SIGTERM before that kills node outright).
  await until(() => watching && srv.hitsOf('/m.yml') >= 1, 'the watch to start');
  const sent = Date.now();
  process.kill(pid, 'SIGTERM');
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(Date.now() - sent < 5000, 'sanity bound');
  assert.match(r.stderr, /stopped watching/);
});

test('watch: SIGTERM during a deploy aborts it, runs the failure commands, and exits 0', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  manifestEndpoint(srv, '/m.yml').set(`commands:\n  pre: ["touch ${s.out}/started; sleep 60"]\n  failure: ["touch ${s.out}/failed"]\n`);
  let pid = 0;
  const run = s.run('', { args: ['watch', srv.url('/m.yml'), '--interval=1s'], onSpawn: (p) => (pid = p) });
  await until(() => existsSync(`${s.out}/started`), 'the deploy to start');
  process.kill(pid, 'SIGTERM');
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(`${s.out}/failed`));
});

test('watch and deploy URL: usage errors exit 2', async (t) => {
  const s = new Scenario(t);
  assert.equal((await s.run('', { args: ['watch'] })).code, 2);
  assert.equal((await s.run('', { args: ['deploy'] })).code, 2);
});

test('watch: an interval under 1s is a usage error, and nothing is polled (--interval 0 was a tight loop)', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  srv.route('/m.yml', (_q, res) => res.end('commands:\n  pre: ["true"]\n'));
  for (const interval of ['0', '0s', '999ms', '0.5']) {
    const r = await s.run('', { args: ['watch', srv.url('/m.yml'), `--interval=${interval}`] });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--interval .* is too short: at least 1s/);
  }
  assert.equal(srv.hitsOf('/m.yml'), 0);
});

test('watch: at --interval 1s, three seconds of watching make a handful of requests', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  manifestEndpoint(srv, '/m.yml').set(`commands:\n  pre: ["true"]\n`);
  const w = startWatch(s, srv.url('/m.yml'), ['--jitter=0']);
  await until(() => srv.hitsOf('/m.yml') >= 1, 'the first poll');
  const first = srv.hitsOf('/m.yml');
  await sleep(3000);
  const made = srv.hitsOf('/m.yml') - first;
  assert.equal((await w.stop()).code, 0);
  assert.ok(made >= 1 && made <= 4, `${made} requests in 3 s at a 1 s interval`);
});

test('deploy URL: the same deploy as a URL on stdin', async (t) => {
  const s = new Scenario(t);
  s.manifest(s.archive(tar([{ path: 'via-argument' }])));
  const r = await s.run('', { args: ['deploy', `file://${s.root}/manifest.yml`] });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['via-argument']);
  assert.match(r.stderr, /deploy requested by the command line/);
});

test('watch: an s3:// manifest is polled with HeadObject and redeployed when its ETag changes', async (t) => {
  const { TestS3, S3_KEY, S3_SECRET } = await import('../helpers/s3.js');
  const s = new Scenario(t);
  const s3 = await TestS3.start(t, ['deploys']);
  const put = async (v: string) => {
    const archive = tar([{ path: 'VERSION', body: v, mtime: 1_700_000_000 + Number(v.slice(1)) }]);
    await s3.put('deploys', `app/${v}.tar`, archive);
    await s3.put('deploys', 'app/manifest.yml', `src: ${v}.tar\nchecksum: ${sha1(archive)}\ndest: ${s.dest}\ncommands:\n  post: ["echo ${v} >> ${s.out}/deployed"]\n`);
  };
  await put('v1');
  let pid = 0;
  const env = { AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: s3.endpoint };
  const run = s.run('', { args: ['watch', 's3://deploys/app/manifest.yml', '--interval=1s', '--jitter=0'], env, onSpawn: (p) => (pid = p) });
  await until(() => deployed(s).length === 1, 'v1 from S3');
  await sleep(800);
  await put('v2');
  await until(() => deployed(s).length === 2, 'v2 from S3');
  process.kill(pid, 'SIGTERM');
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(deployed(s), ['v1', 'v2']);
  assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), 'v2');
});

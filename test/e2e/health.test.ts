import assert from 'node:assert/strict';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { TestServer } from '../helpers/http.js';
import { runStretcher } from '../helpers/cli.js';
import { Scenario } from '../helpers/scenario.js';
import { tar } from '../helpers/tar.js';

const lines = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n') : []);

/** A release-strategy manifest of version `v`, its post recording which release it started. */
function releaseManifest(s: Scenario, v: string, health: string): string {
  const current = path.join(path.dirname(s.dest), 'current');
  const lines = s.archive(tar([{ path: 'VERSION', body: v }]), `${v}.tar`).replace(`dest: ${s.dest}`, `dest: ${current}`);
  return s.manifest(
    `${lines}sync_strategy: release
${health}commands:
  post: ['echo "post $(cat $STRETCHER_DEST/VERSION) rollback=$STRETCHER_ROLLBACK" >> ${s.out}/hooks']
  failure: ['echo "failure rolled_back=$STRETCHER_ROLLED_BACK now=$(cat $STRETCHER_DEST/VERSION) error=$STRETCHER_ERROR" >> ${s.out}/hooks']
`,
    `${v}.yml`,
  );
}

test('health: a URL that never answers 2xx fails the deploy; release strategy: dest switched back and the restored release started again', async (t) => {
  const server = await TestServer.start(t);
  server.route('/health', (_req, res) => {
    res.writeHead(503);
    res.end('sick');
  });
  const s = new Scenario(t);
  const current = path.join(path.dirname(s.dest), 'current');
  assert.equal((await s.run(releaseManifest(s, 'v1', ''))).code, 0);
  const v1 = readlinkSync(current);

  const r = await s.run(releaseManifest(s, 'v2', `health:\n  url: ${server.url('/health')}\n  timeout: 1s\n  interval: 0.2\n`));
  assert.equal(r.code, 1, r.stderr);
  assert.equal(readlinkSync(current), v1);
  assert.equal(readFileSync(path.join(current, 'VERSION'), 'utf8'), 'v1');
  const hooks = lines(`${s.out}/hooks`);
  assert.deepEqual(hooks.slice(0, 3), ['post v1 rollback=', 'post v2 rollback=', 'post v1 rollback=1']);
  assert.match(hooks[3] ?? '', /^failure rolled_back=1 now=v1 error=health check failed: not healthy after 1s \(\d+ tries\); last result: GET http:\/\/127\.0\.0\.1:\d+\/health answered 503$/);
  assert.ok(server.hitsOf('/health') >= 2, `tried ${server.hitsOf('/health')} times`);
  assert.match(r.stderr, /health: try 1: not healthy: GET \S+ answered 503/);
  assert.match(r.stderr, /health: try 2: not healthy/);
  assert.match(r.stderr, /running the post commands of restored release/);
  // post itself succeeded: the log says what failed.
  assert.match(r.stderr, /WARN: health check failed: rolled back to release \S+/);
  assert.doesNotMatch(r.stderr, /post failed/);
  const record = JSON.parse(readFileSync(path.join(s.state, 'deploys', (await import('node:fs')).readdirSync(path.join(s.state, 'deploys'))[0] as string), 'utf8')) as {
    result: string;
    error_code: string;
    release: string;
  };
  assert.equal(record.result, 'failure');
  assert.equal(record.error_code, 'HEALTH_FAILED');
});

test('health: tries until the URL is healthy; the log has each try', async (t) => {
  const server = await TestServer.start(t);
  server.route('/health', (_req, res, hit) => {
    res.writeHead(hit < 3 ? 500 : 204);
    res.end();
  });
  const s = new Scenario(t);
  const r = await s.run(
    s.manifest(`${s.archive(tar([{ path: 'index.html', body: 'v2' }]))}health:\n  url: ${server.url('/health')}\n  interval: 100ms\ncommands:\n  success: ['echo ok > ${s.out}/success']\n`),
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(server.hitsOf('/health'), 3);
  assert.match(r.stderr, /health: try 2: not healthy: GET \S+ answered 500/);
  assert.match(r.stderr, /health: try 3: healthy \(GET \S+ answered 204\)/);
  assert.ok(existsSync(`${s.out}/success`));
});

test('health: rsync strategy, a failing command fails the deploy and says why; dest keeps the new version', async (t) => {
  const s = new Scenario(t);
  const r = await s.run(
    s.manifest(`${s.archive(tar([{ path: 'index.html', body: 'v2' }]))}health:
  command: test -f $STRETCHER_DEST/ready
  timeout: 0.5
  interval: 0.1
commands:
  failure: ['echo "$STRETCHER_ERROR" > ${s.out}/error']
`),
  );
  assert.equal(r.code, 1);
  assert.equal(readFileSync(path.join(s.dest, 'index.html'), 'utf8'), 'v2');
  assert.match(readFileSync(`${s.out}/error`, 'utf8'), /^health check failed: not healthy after 500ms \(\d+ tries\); last result: command "test -f \$STRETCHER_DEST\/ready" exited with status 1\n$/);
  assert.match(r.stderr, /health: test -f/);
  assert.deepEqual(s.leftovers(), []);
});

test('health: a check that hangs is cut at the timeout; command and url must both pass', async (t) => {
  const server = await TestServer.start(t);
  server.route('/ok', (_req, res) => res.end('ok'));
  const s = new Scenario(t);
  const started = Date.now();
  const r = await s.run(
    s.manifest(`${s.archive(tar([{ path: 'index.html', body: 'v2' }]))}health:
  command: echo $$ > ${s.out}/pid; exec sleep 30
  url: ${server.url('/ok')}
  timeout: 1
commands:
  failure: ['echo "$STRETCHER_ERROR" > ${s.out}/error']
`),
  );
  assert.equal(r.code, 1, r.stderr);
  assert.ok(Date.now() - started < 20_000, 'the hanging check did not hold the deploy');
  const error = readFileSync(`${s.out}/error`, 'utf8');
  assert.match(error, /^health check failed: not healthy after 1s \(1 try\); last result: command "echo .*" timed out after 1s .*; GET \S+\/ok answered 200\n$/);
  const pid = Number(readFileSync(`${s.out}/pid`, 'utf8'));
  assert.throws(() => process.kill(pid, 0), 'the hanging check was killed');
});

test('health: validate shows the gate and refuses a bad one', async (t) => {
  const s = new Scenario(t);
  const good = s.manifest(`dest: ${s.dest}\nhealth:\n  command: curl -fsS http://127.0.0.1:8080/health\n  url: http://127.0.0.1:8080/health\n`, 'good.yml');
  const ok = await runStretcher({ args: ['validate', good], env: s.env() });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /good\.yml: health: command "curl -fsS http:\/\/127\.0\.0\.1:8080\/health" and GET http:\/\/127\.0\.0\.1:8080\/health, every 2s for up to 1m0s\n/);
  const bad = s.manifest(`dest: ${s.dest}\nhealth:\n  timeout: soon\n  urll: x\n`, 'bad.yml');
  const r = await runStretcher({ args: ['validate', bad], env: s.env() });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /line 3: health\.timeout "soon" must be seconds \(60\) or a Go duration/);
  assert.match(r.stdout, /line 4: unknown key "urll" in health \(did you mean "url"\?\)/);
  const none = s.manifest(`dest: ${s.dest}\nhealth:\n  timeout: 5\n`, 'none.yml');
  const r2 = await runStretcher({ args: ['validate', none], env: s.env() });
  assert.equal(r2.code, 1);
  assert.match(r2.stdout, /health needs a command, a url, or both/);
  const ftp = s.manifest(`dest: ${s.dest}\nhealth:\n  url: ftp://x/\n`, 'ftp.yml');
  assert.match((await runStretcher({ args: ['validate', ftp], env: s.env() })).stdout, /health\.url "ftp:\/\/x\/" must be an http:\/\/ or https:\/\/ URL/);
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { listTree, Scenario } from '../helpers/scenario.js';
import { tar, tgz } from '../helpers/tar.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** Commands that record what they saw into files under `out`. */
function recorder(out: string): string {
  return `commands:
  pre:
    - echo pre >> ${out}/order; pwd > ${out}/pre.cwd
    - env | grep ^STRETCHER_ | sort > ${out}/pre.env
  post:
    - echo post >> ${out}/order
    - echo "line one from post"; echo "line two on stderr" >&2
  success:
    - echo success >> ${out}/order; cat > ${out}/success.stdin
  failure:
    - echo failure >> ${out}/order; cat > ${out}/failure.stdin; pwd > ${out}/failure.cwd
    - echo "$STRETCHER_ERROR" > ${out}/failure.error
`;
}

const read = (file: string): string => (existsSync(file) ? readFileSync(file, 'utf8') : '');

test('hooks run in order, in the start directory, with STRETCHER_* and the log on stdin', async (t) => {
  const s = new Scenario(t);
  const cwd = path.join(s.root, 'elsewhere');
  mkdirSync(cwd);
  s.manifest(`${s.archive(tar([{ path: 'a', body: 'A' }]))}${recorder(s.out)}`);
  const r = await s.run(`${s.root}/manifest.yml`, { cwd });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(read(`${s.out}/order`), 'pre\npost\nsuccess\n');
  assert.equal(read(`${s.out}/pre.cwd`).trim(), cwd);
  const env = read(`${s.out}/pre.env`);
  assert.match(env, new RegExp(`^STRETCHER_DEST=${s.dest}$`, 'm'));
  assert.match(env, new RegExp(`^STRETCHER_MANIFEST_URL=file://${s.root}/manifest.yml$`, 'm'));
  assert.match(env, new RegExp(`^STRETCHER_SRC=file://${s.root}/app.tar$`, 'm'));
  assert.match(env, /^STRETCHER_CHECKSUM=[0-9a-f]{40}$/m);
  const log = read(`${s.out}/success.stdin`);
  assert.match(log, /line one from post/);
  assert.match(log, /line two on stderr/);
  assert.match(log, /deploy succeeded/);
  assert.match(log, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /);
});

test('commands-only manifest (no src): pre, post, success', async (t) => {
  const s = new Scenario(t);
  s.manifest(recorder(s.out));
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(read(`${s.out}/order`), 'pre\npost\nsuccess\n');
  assert.match(r.stderr, /no src in the manifest: running commands only/);
});

test('a failing success command skips the rest of success and still exits 0', async (t) => {
  const s = new Scenario(t);
  s.manifest(`commands:\n  success:\n    - "false"\n    - touch ${s.out}/second\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(existsSync(`${s.out}/second`), false);
  assert.match(r.stderr, /success command failed: "false" exited with status 1; the deploy itself succeeded/);
});

test('success and failure commands that do not read stdin are fine (no EPIPE)', async (t) => {
  const s = new Scenario(t);
  s.manifest(`commands:\n  pre: ["seq 1 20000"]\n  success: ["true", "touch ${s.out}/ok"]\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(`${s.out}/ok`));
});

test('serf variables reach the commands', async (t) => {
  const s = new Scenario(t);
  s.manifest(`commands:\n  pre: ["echo $SERF_USER_EVENT $SERF_SELF_NAME > ${s.out}/serf"]\n`);
  const r = await s.run(`${s.root}/manifest.yml\n`, { env: { SERF_EVENT: 'user', SERF_USER_EVENT: 'deploy', SERF_SELF_NAME: 'web1' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(read(`${s.out}/serf`), 'deploy web1\n');
  assert.match(r.stderr, /deploy requested by serf event "deploy"/);
});

test('a daemon started by post does not hang the deploy', async (t) => {
  const s = new Scenario(t);
  s.manifest(`commands:\n  post: ["sleep 30 & echo $! > ${s.out}/daemon", "echo started"]\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /started/);
  process.kill(Number(read(`${s.out}/daemon`)), 'SIGKILL');
});

// behaviour.md section 5, row by row.

test('failure: manifest cannot be read -> exit 1, one error line, no commands', async (t) => {
  const s = new Scenario(t);
  const r = await s.run(`${s.root}/missing.yml`);
  assert.equal(r.code, 1);
  const errors = r.stderr.split('\n').filter((l) => / ERROR: /.test(l));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0] as string, /deploy failed: no such file: \S+\/missing\.yml/);
});

test('failure: an invalid manifest with valid failure commands runs them', async (t) => {
  const s = new Scenario(t);
  s.manifest(`${s.archive(tar([{ path: 'a' }]))}exclude: ["*.pid"]\n${recorder(s.out)}`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1);
  assert.equal(read(`${s.out}/order`), 'failure\n');
  assert.match(read(`${s.out}/failure.error`), /unknown key "exclude" \(did you mean "excludes"\?\)/);
  assert.equal(existsSync(s.dest), false);
});

test('failure: checksum mismatch -> pre not run, dest untouched, failure commands get the log', async (t) => {
  const s = new Scenario(t);
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'v1'), 'v1');
  const lines = s.archive(tar([{ path: 'v2' }])).replace(/checksum: \w+/, `checksum: ${'0'.repeat(40)}`);
  s.manifest(`${lines}${recorder(s.out)}`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1);
  assert.equal(read(`${s.out}/order`), 'failure\n');
  assert.deepEqual(listTree(s.dest), ['v1']);
  assert.match(read(`${s.out}/failure.stdin`), /checksum mismatch for file:\/\/\S+app\.tar: expected sha1 0{40}, got [0-9a-f]{40}/);
  assert.deepEqual(s.leftovers(), []);
});

test('failure: a wrong body (an HTML page, another archive) is reported as a checksum mismatch, not an unpack error', async (t) => {
  const s = new Scenario(t);
  const lines = s.archive(tar([{ path: 'a' }]));
  writeFileSync(path.join(s.root, 'app.tar'), '<html><body>502 Bad Gateway</body></html>'.repeat(30));
  s.manifest(`${lines}${recorder(s.out)}`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1);
  assert.match(read(`${s.out}/failure.error`), /^checksum mismatch for file:\/\/\S+app\.tar: expected sha1/);
  assert.deepEqual(s.leftovers(), []);
});

test('failure: pre fails -> later pre and post skipped, dest untouched', async (t) => {
  const s = new Scenario(t);
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'v1'), 'v1');
  s.manifest(`${s.archive(tar([{ path: 'v2' }]))}commands:\n  pre: ["exit 3", "touch ${s.out}/pre2"]\n  post: ["touch ${s.out}/post"]\n  failure: ["cat > ${s.out}/failure.stdin"]\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1);
  assert.equal(existsSync(`${s.out}/pre2`), false);
  assert.equal(existsSync(`${s.out}/post`), false);
  assert.deepEqual(listTree(s.dest), ['v1']);
  assert.match(read(`${s.out}/failure.stdin`), /pre command failed: "exit 3" exited with status 3/);
  assert.deepEqual(s.leftovers(), []);
});

test('failure: extraction fails -> pre not run (unpacking precedes it), failure commands run in the start directory, dest untouched', async (t) => {
  const s = new Scenario(t);
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'v1'), 'v1');
  // Random bytes do not compress, so cutting the gzip at 5 kB really loses most of the archive.
  const truncated = tgz([{ path: 'big', body: randomBytes(100_000) }]).subarray(0, 5000);
  s.manifest(`${s.archive(truncated, 'app.tgz')}${recorder(s.out)}`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1);
  assert.equal(read(`${s.out}/order`), 'failure\n');
  assert.equal(read(`${s.out}/failure.cwd`).trim(), s.root);
  assert.match(read(`${s.out}/failure.error`), /cannot unpack the archive/);
  assert.deepEqual(listTree(s.dest), ['v1']);
  assert.deepEqual(s.leftovers(), []);
});

test('failure: a dest whose parent is missing is found before anything runs; failure commands run', async (t) => {
  const s = new Scenario(t);
  const lines = s.archive(tar([{ path: 'a' }])).replace(`dest: ${s.dest}`, `dest: ${s.root}/no/such/parent/app`);
  s.manifest(`${lines}${recorder(s.out)}`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1);
  assert.equal(read(`${s.out}/order`), 'failure\n');
  assert.match(read(`${s.out}/failure.error`), /the parent directory of dest, \S+\/no\/such\/parent, does not exist \(stretcher creates dest, not its parents: mkdir -p /);
  assert.deepEqual(s.leftovers(), []);
});

test('failure: sync fails after pre -> failure commands run, dest as it was, no temp files left', async (t) => {
  const s = new Scenario(t);
  // dest keeps an excluded log/ with a file in it, and the archive has a file named log: rsync cannot make
  // way for it either ("could not make way for new regular file").
  mkdirSync(path.join(s.dest, 'log'), { recursive: true });
  writeFileSync(path.join(s.dest, 'log', 'app.log'), 'kept');
  writeFileSync(path.join(s.dest, 'old'), 'v1');
  s.manifest(`${s.archive(tar([{ path: 'log', body: 'a file' }, { path: 'new' }]))}excludes: ["log/***"]\n${recorder(s.out)}`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1);
  assert.equal(read(`${s.out}/order`), 'pre\nfailure\n');
  assert.match(read(`${s.out}/failure.error`), /sync to \S+ failed: cannot replace log in dest with the archive's entry: excluded entries are kept there/);
  assert.equal(readFileSync(path.join(s.dest, 'log', 'app.log'), 'utf8'), 'kept');
  assert.equal(readFileSync(path.join(s.dest, 'old'), 'utf8'), 'v1', 'the conflict is found before anything at dest changes');
  assert.deepEqual(s.leftovers(), []);
});

test('failure: post fails -> failure commands run; dest already holds the new version', async (t) => {
  const s = new Scenario(t);
  s.manifest(`${s.archive(tar([{ path: 'v2' }]))}commands:\n  post: ["exit 1"]\n  failure: ["echo failure > ${s.out}/order"]\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1);
  assert.equal(read(`${s.out}/order`), 'failure\n');
  assert.deepEqual(listTree(s.dest), ['v2']);
});

test('failure: unset must_env is a normal failure naming the variable (Go panicked)', async (t) => {
  const s = new Scenario(t);
  s.manifest('dest: /srv/{{ must_env "APP_NAME" }}\n');
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /must_env: environment variable APP_NAME is not set/);
  assert.doesNotMatch(r.stderr, / {4}at /, 'no stack trace');
});

test('consul: a failed deploy exits 0 under CONSUL_INDEX, still runs failure commands and records it', async (t) => {
  const s = new Scenario(t);
  s.manifest(`commands:\n  pre: ["false"]\n  failure: ["touch ${s.out}/failed"]\n`);
  const events = JSON.stringify([{ ID: 'ev-1', Name: 'deploy', Payload: b64(`file://${s.root}/manifest.yml`), LTime: 3 }]);
  const r = await s.run(events, { env: { CONSUL_INDEX: '42' } });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(`${s.out}/failed`));
  assert.match(r.stderr, /deploy failed: pre command failed/);
  const byHand = await s.run(events.replace('ev-1', 'ev-2'));
  assert.equal(byHand.code, 1, 'the same kind of event by hand: a failure exits 1');
});

test('consul: [] at watch start exits 0 under CONSUL_INDEX and 1 by hand', async (t) => {
  const s = new Scenario(t);
  const watch = await s.run('[]', { env: { CONSUL_INDEX: '1' } });
  assert.equal(watch.code, 0);
  assert.match(watch.stderr, /No Consul events found: nothing to do/);
  assert.equal((await s.run('[]')).code, 1);
});

test('consul: the last of several buffered events is deployed; a re-sent event ID is skipped', async (t) => {
  const s = new Scenario(t);
  s.manifest(`commands:\n  pre: ["echo one >> ${s.out}/ran"]\n`, 'one.yml');
  s.manifest(`commands:\n  pre: ["echo two >> ${s.out}/ran"]\n`, 'two.yml');
  // Exactly what `consul watch -type event` writes: every field, indented, newline-terminated.
  const event = (id: string, url: string, ltime: number) => ({
    ID: id,
    Name: 'deploy',
    Payload: b64(url),
    NodeFilter: '',
    ServiceFilter: '',
    TagFilter: '',
    Version: 1,
    LTime: ltime,
  });
  const events = `${JSON.stringify([event('a1', `file://${s.root}/one.yml`, 1), event('a2', `file://${s.root}/two.yml`, 2)], null, 2)}\n`;
  const first = await s.run(events, { env: { CONSUL_INDEX: '5' } });
  assert.equal(first.code, 0, first.stderr);
  const again = await s.run(events, { env: { CONSUL_INDEX: '6' } });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /Consul event a2 was already handled; skipping/);
  assert.equal(read(`${s.out}/ran`), 'two\n');
});

test('consul: a null payload is a logged failure, exit 0 under the watch', async (t) => {
  const s = new Scenario(t);
  const r = await s.run(JSON.stringify([{ ID: 'n1', Name: 'deploy', Payload: null }]), { env: { CONSUL_INDEX: '9' } });
  assert.equal(r.code, 0);
  assert.match(r.stderr, /Consul event "deploy" \(ID n1\) has no payload/);
});

test('stdin that names no deploy fails with one ERROR: deploy failed line, as every failure does', async (t) => {
  const s = new Scenario(t);
  for (const [stdin, env, code, why] of [
    ['\n  \n', {}, 1, /no manifest URL on stdin/],
    ['[1, 2', {}, 1, /invalid Consul event JSON on stdin/],
    ['{"ID": "x"}', { CONSUL_INDEX: '3' }, 0, /invalid Consul event JSON on stdin: expected an array of events/],
  ] as const) {
    const r = await s.run(stdin, { env });
    assert.equal(r.code, code, r.stderr);
    const errors = r.stderr.split('\n').filter((line) => line.includes('ERROR'));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0] ?? '', /ERROR: deploy failed: /);
    assert.match(errors[0] ?? '', why);
  }
});

test('serf: a catch-all handler given member-join does nothing and exits 0', async (t) => {
  const s = new Scenario(t);
  const r = await s.run('web2\t127.0.0.2\t\t\n', { env: { SERF_EVENT: 'member-join', SERF_SELF_NAME: 'web1' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /ignoring serf member-join event/);
});

test('failure: a machine problem (an unusable TMPDIR) is one clear error line, not reported as a bug', async (t) => {
  const s = new Scenario(t);
  s.manifest(`${s.archive(tar([{ path: 'a' }]))}${recorder(s.out)}`);
  const r = await s.run(`${s.root}/manifest.yml`, { env: { TMPDIR: `${s.root}/no/such/tmp` } });
  assert.equal(r.code, 1);
  const errors = r.stderr.split('\n').filter((l) => / ERROR: /.test(l));
  assert.deepEqual(errors.length, 1, r.stderr);
  assert.match(errors[0] as string, /deploy failed: cannot use TMPDIR \S+\/no\/such\/tmp: it does not exist$/);
  assert.equal(read(`${s.out}/order`), 'failure\n');
});

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { listTree, Scenario, WRITER_THREADS } from '../helpers/scenario.js';
import { tar } from '../helpers/tar.js';
import { running } from '../helpers/procs.js';
import { until, untilLine } from '../helpers/wait.js';

/** Running, as opposed to gone or a zombie (some container inits never reap orphans). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  test(`${sig} mid-command kills the whole process group, runs failure commands, cleans up, exits non-zero`, async (t) => {
    const s = new Scenario(t);
    mkdirSync(s.dest);
    writeFileSync(path.join(s.dest, 'v1'), 'v1');
    // pre starts a grandchild (sleep) and records its pid: the kill must reach it, not only sh.
    s.manifest(`${s.archive(tar([{ path: 'v2' }]))}commands:
  pre:
    - "sh -c 'sleep 300 & echo $! > ${s.out}/grandchild; wait'"
  failure:
    - cat > ${s.out}/failure.stdin
    - echo "$STRETCHER_ERROR" > ${s.out}/failure.error
`);
    let pid = 0;
    const run = s.run(`${s.root}/manifest.yml`, { onSpawn: (p) => (pid = p) });
    const grandchild = Number(await untilLine(`${s.out}/grandchild`, 'the grandchild pid'));
    assert.ok(alive(grandchild));
    process.kill(pid, sig);
    const r = await run;
    assert.equal(r.code, sig === 'SIGTERM' ? 143 : 130, r.stderr);
    assert.equal(readFileSync(`${s.out}/failure.error`, 'utf8').trim(), `interrupted by ${sig}`);
    assert.match(readFileSync(`${s.out}/failure.stdin`, 'utf8'), /pre: sh -c/);
    await sleep(100);
    assert.equal(alive(grandchild), false, 'grandchild killed with its group');
    assert.deepEqual(listTree(s.dest), ['v1'], 'dest untouched');
    assert.deepEqual(s.leftovers(), []);
  });
}

test('SIGTERM under CONSUL_INDEX still exits 0 (the watch must keep running)', async (t) => {
  const s = new Scenario(t);
  s.manifest(`commands:\n  pre: ["touch ${s.out}/started; sleep 300"]\n  failure: ["touch ${s.out}/failed"]\n`);
  const payload = Buffer.from(`file://${s.root}/manifest.yml`).toString('base64');
  let pid = 0;
  const run = s.run(JSON.stringify([{ ID: 'sig-1', Name: 'deploy', Payload: payload }]), { env: { CONSUL_INDEX: '3' }, onSpawn: (p) => (pid = p) });
  await until(() => existsSync(`${s.out}/started`), `${s.out}/started`);
  process.kill(pid, 'SIGTERM');
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(`${s.out}/failed`));
});

test('SIGTERM ends --random-delay at once', async (t) => {
  const s = new Scenario(t);
  let pid = 0;
  const started = Date.now();
  let sleeping = false;
  const run = s.run('file:///nonexistent.yml', { args: ['-random-delay', '1h'], onSpawn: (p) => (pid = p), onStderr: (text) => (sleeping = /sleeping \d+ms/.test(text)) });
  await until(() => sleeping, 'the random delay to start');
  process.kill(pid, 'SIGTERM');
  const r = await run;
  assert.equal(r.code, 143, r.stderr);
  assert.match(r.stderr, /ERROR: deploy failed: interrupted while sleeping/);
  assert.ok(Date.now() - started < 15_000, 'sanity bound');
});

for (const [what, entries, env] of [
  ['one file', [{ path: 'big', body: Buffer.alloc(1_000_000) }], {}],
  // Past 500 files, with creating files counted as slow, writer threads are busy with the archive when the signal comes.
  ['600 files, written by threads', [...Array.from({ length: 600 }, (_, i) => ({ path: `d${i % 10}/f${i}`, body: 'x'.repeat(1000) })), { path: 'big', body: Buffer.alloc(1_000_000) }], WRITER_THREADS],
] as const) {
  test(`SIGTERM during a download removes the partial file and the partial tree (${what})`, async (t) => {
    const s = new Scenario(t, { env });
    const { TestServer } = await import('../helpers/http.js');
    const srv = await TestServer.start(t);
    const body = tar([...entries]);
    srv.file('/m.yml', `src: a.tar\nchecksum: ${(await import('../helpers/tar.js')).sha1(body)}\ndest: ${s.dest}\ncommands:\n  failure: ["touch ${s.out}/failed"]\n`);
    srv.route('/a.tar', (_q, res) => {
      res.writeHead(200, { 'content-length': body.length });
      // Stops inside the last (big) file.
      res.write(body.subarray(0, body.length - 700_000));
    });
    let pid = 0;
    const run = s.run(srv.url('/m.yml'), { onSpawn: (p) => (pid = p) });
    const until = Date.now() + 15_000;
    while (srv.hitsOf('/a.tar') === 0 && Date.now() < until) await sleep(20);
    await sleep(300);
    process.kill(pid, 'SIGTERM');
    const r = await run;
    assert.equal(r.code, 143, r.stderr);
    assert.ok(existsSync(`${s.out}/failed`));
    assert.equal(existsSync(s.dest), false);
    assert.deepEqual(s.leftovers(), []);
  });
}

test('SIGTERM: a child that ignores it gets SIGKILL even though sh exited at once; the lock is held until it is gone', async (t) => {
  const s = new Scenario(t);
  const m = `stretcher-test-${process.pid}-${Date.now()}`;
  // sh dies of SIGTERM at once; its background child ignores SIGTERM and would outlive the deploy.
  s.manifest(`dest: ${s.dest}
commands:
  pre:
    - "sh -c 'trap \\"\\" TERM; touch ${s.out}/started; sleep 600 # ${m}' & sleep 600"
`);
  // The bracket keeps pgrep from matching the second pre's own command line.
  s.manifest(`dest: ${s.dest}\ncommands:\n  pre: ["pgrep -f '[s]leep 600 # ${m}' > ${s.out}/seen-by-second || true"]\n`, 'second.yml');
  let pid = 0;
  const first = s.run(`${s.root}/manifest.yml`, { onSpawn: (p) => (pid = p) });
  await until(() => existsSync(`${s.out}/started`), 'the stubborn child');
  process.kill(pid, 'SIGTERM');
  // A second deploy to the same dest, started while the first is stopping, must wait for the lock.
  await sleep(300);
  const second = s.run(`${s.root}/second.yml`);
  const r = await first;
  assert.equal(r.code, 143, r.stderr);
  assert.match(r.stderr, /still running 5s after SIGTERM; sending SIGKILL to its process group/);
  assert.deepEqual(running(`sleep 600 # ${m}`), [], 'the child that ignored SIGTERM is gone');
  const r2 = await second;
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(readFileSync(`${s.out}/seen-by-second`, 'utf8'), '', "the second deploy's pre ran only after the first's group was gone");
});

/** A PATH whose `rm` runs `first` (shell) before the real rm: stretcher's tree removals then take that long. */
function slowRm(s: Scenario, first: string): { path: string; realRm: string } {
  const bin = path.join(s.root, 'bin');
  mkdirSync(bin);
  const realRm = execFileSync('sh', ['-c', 'command -v rm'], { encoding: 'utf8' }).trim();
  writeFileSync(path.join(bin, 'rm'), `#!/bin/sh\n${first}\nexec ${realRm} "$@"\n`, { mode: 0o755 });
  return { path: `${bin}:${process.env.PATH}`, realRm };
}

test('SIGTERM after post, while mv still removes the previous dest: the deploy fails with failure commands run, as during the sync', async (t) => {
  const s = new Scenario(t);
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'v1'), 'v1');
  // The previous tree's removal (rm -rf) outlasts post and the signal: an rm that waits a second first.
  const { path: withSlowRm } = slowRm(s, 'sleep 1');
  s.manifest(`${s.archive(tar([{ path: 'v2' }]))}sync_strategy: mv
commands:
  post: ["touch ${s.out}/posted"]
  success: ["touch ${s.out}/succeeded"]
  failure: ["ls -a ${path.dirname(s.dest)} | grep -c stretcher-old > ${s.out}/failed; true"]
`);
  let pid = 0;
  const run = s.run(`${s.root}/manifest.yml`, { env: { PATH: withSlowRm }, onSpawn: (p) => (pid = p) });
  await until(() => existsSync(`${s.out}/posted`), 'post');
  process.kill(pid, 'SIGTERM');
  const r = await run;
  assert.equal(r.code, 143, r.stderr);
  assert.equal(existsSync(`${s.out}/succeeded`), false);
  assert.equal(readFileSync(`${s.out}/failed`, 'utf8').trim(), '0', 'the failure commands ran, once the old tree was gone');
  assert.deepEqual(listTree(s.dest), ['v2']);
  assert.deepEqual(s.leftovers(), []);
});

test('SIGKILL while mv removes the previous dest leaves it in custody, which the next run removes, never as an old tree it would put back', async (t) => {
  const s = new Scenario(t);
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'v1'), 'v1');
  const { path: withSlowRm, realRm } = slowRm(s, `touch ${s.out}/removing; sleep 3`);
  s.manifest(`${s.archive(tar([{ path: 'v2' }]))}sync_strategy: mv\n`);
  let pid = 0;
  const run = s.run(`${s.root}/manifest.yml`, { env: { PATH: withSlowRm }, onSpawn: (p) => (pid = p) });
  await until(() => existsSync(`${s.out}/removing`), 'the removal');
  process.kill(pid, 'SIGKILL');
  await run;
  const beside = () => readdirSync(path.dirname(s.dest)).filter((n) => n.includes('stretcher-'));
  assert.deepEqual(listTree(s.dest), ['v2']);
  assert.equal(beside().filter((n) => n.includes('stretcher-old-')).length, 0, `an old tree beside dest: ${beside().join(', ')}`);
  assert.equal(beside().filter((n) => n.includes('stretcher-custody-')).length, 1, beside().join(', '));
  // dest gone before the next run (an operator's rm -rf): nothing half-removed is put back.
  execFileSync(realRm, ['-rf', s.dest]);
  s.manifest(`${s.archive(tar([{ path: 'v3' }]), 'v3.tar')}sync_strategy: mv\n`, 'v3.yml');
  const r = await s.run(`${s.root}/v3.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /restored/);
  assert.deepEqual(listTree(s.dest), ['v3']);
  assert.deepEqual(beside(), []);
});

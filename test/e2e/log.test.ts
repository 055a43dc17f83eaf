import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { STRETCHER_SHELL } from '../helpers/cli.js';
import { Scenario } from '../helpers/scenario.js';

test('CLI: --log-format json writes only JSON lines on stderr', async (t) => {
  const s = new Scenario(t);
  s.manifest('commands:\n  pre: ["echo hello from pre"]\n');
  const r = await s.run(`${s.root}/manifest.yml`, { args: ['--log-format=json'] });
  assert.equal(r.code, 0, r.stderr);
  const records = r.stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { msg: string; source?: string });
  assert.ok(records.some((x) => x.msg === 'hello from pre' && x.source === 'pre'));
  assert.ok(records.some((x) => /deploy succeeded/.test(x.msg)));
});

test('20 MB of command output: each line costs constant time, memory stays bounded, the kept log keeps its head and tail', async (t) => {
  const s = new Scenario(t);
  // 200,000 lines of 99 characters, then the peak memory of stretcher itself (the post's parent).
  s.manifest(`dest: ${s.dest}
commands:
  pre: ["echo first-line; head -c 20000000 /dev/zero | tr -c x x | fold -w 99; echo last-line"]
  post: ["grep VmHWM /proc/$PPID/status > ${s.out}/hwm"]
  success: ["cat > ${s.out}/success.log"]
`);
  const started = performance.now();
  const r = await s.run(`${s.root}/manifest.yml`, { timeoutMs: 120_000 });
  const elapsed = performance.now() - started;
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  // Generous sanity bound: the quadratic log took 56 s for this; the figures are in bench/RESULTS.md.
  assert.ok(elapsed < 40_000, `${Math.round(elapsed)} ms`);
  const hwmKb = Number(/(\d+) kB/.exec(readFileSync(`${s.out}/hwm`, 'utf8'))?.[1]);
  assert.ok(hwmKb > 0 && hwmKb < 400 * 1024, `peak RSS ${hwmKb} kB`);
  const kept = readFileSync(`${s.out}/success.log`, 'utf8');
  assert.ok(kept.length <= 8.5 * 1024 * 1024, `kept log ${kept.length} bytes`);
  assert.match(kept, /first-line/, 'the head is kept');
  assert.match(kept, /\.\.\. \d+ log lines \(\d+ bytes\) dropped here: the kept log is capped at its first 1 MiB and last 7 MiB \.\.\./);
  assert.match(kept, /last-line\n.*deploy succeeded/s, 'the tail is kept, up to the end');
  // stderr got every line.
  assert.equal((r.stderr.match(/x{99}/g) ?? []).length, Math.floor(20_000_000 / 99));
});

test('a slow reader of stderr still gets the whole log: stretcher waits for its output to drain before exiting', async (t) => {
  const s = new Scenario(t);
  s.manifest(`dest: ${s.dest}\ncommands:\n  pre: ["seq 1 100000"]\n`);
  // The reader takes nothing for a second, so all but the pipe's 64 KiB is still queued when the deploy ends.
  const script = `echo ${s.root}/manifest.yml | ${STRETCHER_SHELL} 2>&1 >/dev/null | (sleep 1; cat) > ${s.out}/stderr`;
  const r = spawnSync('sh', ['-c', script], { env: s.env(), encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const got = readFileSync(`${s.out}/stderr`, 'utf8');
  assert.match(got, / 100000\n/);
  assert.match(got, /deploy succeeded/);
});

test("status --dest D --log prints the last deploy's whole log, redacted; exit 1 when there is none", async (t) => {
  const s = new Scenario(t);
  s.manifest(`dest: ${s.dest}\ncommands:\n  pre: ["echo token is $DEPLOY_TOKEN; echo https://u:pw@example.com/x"]\n`);
  const r = await s.run(`${s.root}/manifest.yml`, { env: { DEPLOY_TOKEN: 'sekrit-value-123' } });
  assert.equal(r.code, 0, r.stderr);
  const log = await s.run('', { args: ['status', '--dest', `${s.dest}//`, '--log'] });
  assert.equal(log.code, 0, log.stderr);
  assert.match(log.stdout, /pre: echo token is/);
  assert.match(log.stdout, /token is REDACTED/);
  assert.match(log.stdout, /https:\/\/u:REDACTED@example\.com/);
  assert.match(log.stdout, /deploy succeeded/);
  assert.doesNotMatch(log.stdout, /sekrit-value-123|:pw@/);

  // The next deploy replaces it whole.
  s.manifest(`dest: ${s.dest}\ncommands:\n  pre: ["echo second; exit 2"]\n`);
  assert.equal((await s.run(`${s.root}/manifest.yml`)).code, 1);
  const second = await s.run('', { args: ['status', '--dest', s.dest, '--log'] });
  assert.match(second.stdout, /second/);
  assert.match(second.stdout, /ERROR: deploy failed: pre command failed/);
  assert.doesNotMatch(second.stdout, /token is/);
  assert.deepEqual(
    readdirSync(`${s.state}/deploys`).filter((n) => n.endsWith('.tmp')),
    [],
    'written by rename: no temp file left',
  );

  const none = await s.run('', { args: ['status', '--dest', '/srv/never', '--log'] });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no log of a deploy to \/srv\/never kept in /);
  const usage = await s.run('', { args: ['status', '--log'] });
  assert.equal(usage.code, 2);
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { running } from '../helpers/procs.js';
import { Scenario } from '../helpers/scenario.js';

function marker(): string {
  return `stretcher-test-${randomBytes(6).toString('hex')}`;
}

test('command_timeout: a post that never returns is killed with its group; the error names it and the limit; failure commands run', async (t) => {
  const s = new Scenario(t);
  const m = marker();
  // The child ignores SIGTERM: only SIGKILL to the group ends it.
  s.manifest(`command_timeout: 1s
dest: ${s.dest}
commands:
  post: ["sh -c 'trap \\"\\" TERM; sleep 600 # ${m}' & sleep 600 # ${m}"]
  failure:
    - echo "$STRETCHER_ERROR" > ${s.out}/error
`);
  const started = performance.now();
  const r = await s.run(`${s.root}/manifest.yml`);
  const elapsed = performance.now() - started;
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /ERROR: deploy failed: post command failed: .*sleep 600.* timed out after 1s \(command_timeout\)/);
  assert.match(readFileSync(`${s.out}/error`, 'utf8'), /timed out after 1s/);
  assert.match(r.stderr, /sending SIGKILL to its process group/);
  assert.deepEqual(running(m), [], 'nothing the post started is left');
  assert.ok(elapsed < 30_000, `sanity bound: ${elapsed} ms`);
  const record = JSON.parse(readFileSync(`${s.state}/deploys/${readdirJson(s.state)}`, 'utf8')) as { error_code: string };
  assert.equal(record.error_code, 'COMMAND_TIMEOUT');
});

function readdirJson(state: string): string {
  return readdirSync(`${state}/deploys`).find((n) => n.endsWith('.json')) as string;
}

test('--command-timeout bounds every command; the manifest command_timeout wins over it', async (t) => {
  const s = new Scenario(t);
  const m = marker();
  s.manifest(`commands:\n  pre: ["sleep 600 # ${m}"]\n`, 'flag.yml');
  const r = await s.run(`${s.root}/flag.yml`, { args: ['--command-timeout', '500ms'] });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /pre command failed: .* timed out after 500ms/);
  assert.deepEqual(running(m), []);

  s.manifest('command_timeout: 30s\ncommands:\n  pre: ["sleep 1.5"]\n', 'wins.yml');
  const ok = await s.run(`${s.root}/wins.yml`, { args: ['--command-timeout', '500ms'] });
  assert.equal(ok.code, 0, ok.stderr);

  s.manifest('command_timeout: 0\ncommands:\n  pre: ["sleep 1.5"]\n', 'none.yml');
  const none = await s.run(`${s.root}/none.yml`, { args: ['--command-timeout', '500ms'] });
  assert.equal(none.code, 0, `command_timeout: 0 is no limit\n${none.stderr}`);
});

test('failure commands have their own bound: a hanging one is killed and stretcher still exits', async (t) => {
  const s = new Scenario(t);
  const m = marker();
  s.manifest(`command_timeout: 1s
commands:
  pre: ["exit 3"]
  failure: ["sleep 600 # ${m}"]
`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /pre command failed: "exit 3" exited with status 3/);
  assert.match(r.stderr, /failure command failed: .* timed out after 1s/);
  assert.deepEqual(running(m), []);
});

test('command_timeout is validated: a value that is not a duration is an error naming the key', async (t) => {
  const s = new Scenario(t);
  s.manifest('command_timeout: soon\ncommands:\n  pre: ["true"]\n');
  const r = await s.run('', { args: ['validate', `${s.root}/manifest.yml`] });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout + r.stderr, /line 1: command_timeout "soon" must be seconds \(90\) or a Go duration/);
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Scenario } from '../helpers/scenario.js';
import { tar } from '../helpers/tar.js';

/** Deploys `top` (manifest keys) with `pre`, and returns the state record's error code and STRETCHER_ERROR. */
async function failure(t: import('node:test').TestContext, top: (s: Scenario) => string, pre = 'true'): Promise<{ code: unknown; error: string }> {
  const s = new Scenario(t);
  s.manifest(`${top(s)}commands:\n  pre: [${JSON.stringify(pre)}]\n  failure: ["echo \\"$STRETCHER_ERROR\\" > ${s.out}/error"]\n`);
  assert.equal((await s.run(`${s.root}/manifest.yml`)).code, 1);
  const status = await s.run('', { args: ['status', '--json', '--dest', s.dest] });
  return { code: (JSON.parse(status.stdout) as Record<string, unknown>).error_code, error: readFileSync(`${s.out}/error`, 'utf8').trim() };
}

test('a failed deploy records a stable error code beside its message', async (t) => {
  const cases: [string, (s: Scenario) => string, string, RegExp][] = [
    ['CHECKSUM_MISMATCH', (s) => s.archive(tar([{ path: 'a' }])).replace(/checksum: \w+/, `checksum: ${'0'.repeat(40)}`), 'true', /^checksum mismatch for /],
    ['ARCHIVE_HOSTILE', (s) => s.archive(tar([{ path: '../evil' }])), 'true', /its path leaves the staging directory/],
    ['ARCHIVE_UNSUPPORTED', (s) => s.archive(Buffer.from('BZh91AY&SY not really bzip2, but its magic')), 'true', /bzip2-compressed/],
    ['COMMAND_FAILED', (s) => s.archive(tar([{ path: 'a' }])), 'exit 3', /^pre command failed: "exit 3" exited with status 3$/],
  ];
  for (const [code, top, pre, message] of cases) {
    const got = await failure(t, top, pre);
    assert.equal(got.code, code, got.error);
    assert.match(got.error, message);
  }
});

test('an invalid manifest that names a valid dest is recorded there: status does not go on showing the last success', async (t) => {
  const s = new Scenario(t);
  s.manifest(s.archive(tar([{ path: 'a' }])));
  assert.equal((await s.run(`${s.root}/manifest.yml`)).code, 0);
  // Under consul watch, as the README's Consul paragraph says of any failure.
  s.manifest(`${s.archive(tar([{ path: 'a' }]))}exclude: ["*.pid"]\ncommands:\n  failure: ["echo ran > ${s.out}/failed"]\n`);
  const events = JSON.stringify([{ ID: 'e-9', Name: 'deploy', Payload: Buffer.from(`${s.root}/manifest.yml`).toString('base64'), LTime: 9 }]);
  const r = await s.run(events, { env: { CONSUL_INDEX: '10' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(`${s.out}/failed`, 'utf8'), 'ran\n');
  const status = JSON.parse((await s.run('', { args: ['status', '--json', '--dest', s.dest] })).stdout) as Record<string, unknown>;
  assert.equal(status.result, 'failure');
  assert.equal(status.error_code, 'MANIFEST_INVALID');
  assert.match(String(status.error), /exclude/);
  assert.equal(status.manifest_url, `file://${s.root}/manifest.yml`);
  assert.equal((status.last_success as Record<string, unknown> | undefined)?.manifest_url, `file://${s.root}/manifest.yml`);
  // A manifest whose dest is itself wrong names no dest to record.
  s.manifest(`${s.archive(tar([{ path: 'a' }])).replace(`dest: ${s.dest}`, 'dest: relative/app')}`);
  assert.equal((await s.run(`${s.root}/manifest.yml`)).code, 1);
  assert.equal((JSON.parse((await s.run('', { args: ['status', '--json', '--dest', s.dest] })).stdout) as Record<string, unknown>).error_code, 'MANIFEST_INVALID');
});

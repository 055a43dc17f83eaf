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

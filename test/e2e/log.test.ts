import assert from 'node:assert/strict';
import { test } from 'node:test';
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

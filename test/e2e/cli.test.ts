import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runStretcher } from '../helpers/cli.js';

test('CLI: --version prints a dotted version on stdout; usage errors exit 2 with one line', async () => {
  for (const flag of ['-v', '-version', '--version']) {
    const r = await runStretcher({ args: [flag] });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /\d+\.\d+\.\d+/);
  }
  const help = await runStretcher({ args: ['--help'] });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--max-bandwidth, --max-band-width RATE/);
  assert.match(help.stdout, /--retry-wait D/);
  const bad = await runStretcher({ args: ['-retry', 'many'] });
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /-retry.*--help/);
  const unknownCmd = await runStretcher({ args: ['frobnicate'] });
  assert.equal(unknownCmd.code, 2);
  assert.match(unknownCmd.stderr, /unknown command "frobnicate"/);
});

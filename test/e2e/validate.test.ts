import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runStretcher } from '../helpers/cli.js';
import { writeManifest } from '../helpers/manifest.js';
import { tempDir } from '../helpers/tmp.js';

const SHA1 = 'e0840daaa97cd2cf2175f9e5d133ffb3324a2b93';

test('stretcher validate: each problem on its own line with the file; exit 0 only when all valid', async (t) => {
  const dir = tempDir(t);
  const good = writeManifest(dir, `src: a.tgz\nchecksum: ${SHA1}\ndest: /srv/app\n`, 'good.yml');
  const bad = writeManifest(dir, `src: a.tgz\nchecksum: 123\ndest: /\nsync_strategy: copy\n`, 'bad.yml');
  const ok = await runStretcher({ args: ['validate', good] });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, `${good}: ok\n`);
  const r = await runStretcher({ args: ['validate', good, bad, `${dir}/missing.yml`] });
  assert.equal(r.code, 1);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], `${good}: ok`);
  assert.ok(lines.includes(`${bad}: line 4: sync_strategy must be one of rsync, mv, release (got "copy")`), r.stdout);
  assert.ok(
    lines.some((l) => l.startsWith(`${dir}/missing.yml: `) && /ENOENT|no such file/.test(l)),
    r.stdout,
  );
});

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { listTree, Scenario } from '../helpers/scenario.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/hello/', import.meta.url));

test('the bundled example deploys as the README says, keeping the excluded pid file', async (t) => {
  const s = new Scenario(t);
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'app.pid'), '1');
  const r = await s.run(`file://${EXAMPLE}manifest.yml`, { env: { STRETCHER_EXAMPLE_DEST: s.dest } });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['.deployignore', 'VERSION', 'app.pid', 'bin/', 'bin/start', 'public/', 'public/index.html']);
  assert.match(r.stderr, /\[post\] hello 1\.0\.0 is in place/);
  assert.match(r.stderr, /\[success\] deployed; the log on stdin has \d+ lines/);
});

test('the example manifest pins the committed archive (run examples/hello/build.sh after editing app/)', () => {
  const archive = readFileSync(path.join(EXAMPLE, 'app.tar.gz'));
  const sum = createHash('sha256').update(archive).digest('hex');
  assert.match(readFileSync(path.join(EXAMPLE, 'manifest.yml'), 'utf8'), new RegExp(`^checksum: sha256:${sum}$`, 'm'));
});

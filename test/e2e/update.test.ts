import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Scenario } from '../helpers/scenario.js';
import { type TarEntry, tar } from '../helpers/tar.js';

/**
 * The rsync strategy over a previous version: the merge compares content when it reaches each file, so what
 * changed in dest after unpacking (a pre command, the application) is seen. Both writer paths: a small
 * archive is written on the main thread, one of more than 500 files by writer threads.
 */
for (const files of [20, 800]) {
  const entries = (body: (i: number) => string): TarEntry[] => Array.from({ length: files }, (_, i) => ({ path: `lib/f${i}.txt`, body: body(i), mtime: 1_700_000_000 }));
  const archive = tar([{ path: 'lib', type: 'dir', mtime: 1_700_000_000 }, ...entries((i) => `version 2 of file ${i}\n`)]);

  test(`rsync update (${files} files): files changed in dest after unpacking are replaced, unchanged ones kept with the archive's times`, async (t) => {
    const s = new Scenario(t);
    mkdirSync(path.join(s.dest, 'lib'), { recursive: true });
    // dest holds the new content already for every file but f1, with other mtimes: as after a fresh build.
    for (let i = 0; i < files; i++) {
      const file = path.join(s.dest, 'lib', `f${i}.txt`);
      writeFileSync(file, i === 1 ? `version 1 of file ${i}\n` : `version 2 of file ${i}\n`);
      utimesSync(file, 1_600_000_000, 1_600_000_000);
    }
    const inodeBefore = lstatSync(path.join(s.dest, 'lib', 'f2.txt')).ino;
    // pre runs after unpacking compared the files and before the merge: the app rewrites f0 in place,
    // same size, and replaces f3 by a new file with the same bytes. Neither may be trusted as compared.
    s.manifest(
      `${s.archive(archive)}commands:\n  pre:\n    - printf 'version X of file 0\\n' > ${s.dest}/lib/f0.txt\n    - cp ${s.dest}/lib/f3.txt ${s.dest}/lib/f3.new && mv ${s.dest}/lib/f3.new ${s.dest}/lib/f3.txt\n`,
    );
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 0, r.stderr);
    for (let i = 0; i < files; i++) assert.equal(readFileSync(path.join(s.dest, 'lib', `f${i}.txt`), 'utf8'), `version 2 of file ${i}\n`, `f${i}`);
    assert.equal(lstatSync(path.join(s.dest, 'lib', 'f2.txt')).ino, inodeBefore, 'an unchanged file stays in place (its inode kept)');
    assert.equal(lstatSync(path.join(s.dest, 'lib', 'f2.txt')).mtimeMs, 1_700_000_000_000, "with the archive's mtime");
    // f1 differs; f0 was rewritten by pre, so it is replaced; f3 is a new inode with the same bytes: kept.
    assert.match(r.stderr, new RegExp(`2 replaced, 0 removed, ${files - 2} already as in the archive \\(content compared\\)`));
    assert.deepEqual(s.leftovers(), []);
  });
}

test('rsync update: a FIFO or a directory in dest where the archive has a file is replaced, never opened', async (t) => {
  const s = new Scenario(t);
  mkdirSync(path.join(s.dest, 'dir'), { recursive: true });
  execFileSync('mkfifo', [path.join(s.dest, 'pipe')]);
  writeFileSync(path.join(s.dest, 'same.txt'), 'same\n');
  s.manifest(
    s.archive(
      tar([
        { path: 'pipe', body: 'a file now\n' },
        { path: 'dir', body: 'a file too\n' },
        { path: 'same.txt', body: 'same\n' },
      ]),
    ),
  );
  const r = await s.run(`${s.root}/manifest.yml`, { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(path.join(s.dest, 'pipe'), 'utf8'), 'a file now\n');
  assert.equal(readFileSync(path.join(s.dest, 'dir'), 'utf8'), 'a file too\n');
  assert.match(r.stderr, /1 already as in the archive \(content compared\)/);
});

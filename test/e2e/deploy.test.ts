import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { withTmpfs } from '../helpers/mount.js';
import { listTree, Scenario } from '../helpers/scenario.js';
import { tar, tgz } from '../helpers/tar.js';

const REFERENCE = readFileSync(fileURLToPath(new URL('../fixtures/reference.tar', import.meta.url)));
const REFERENCE_AFTER_EXCLUDES = ['bar', 'exclude.txt', 'foo/', 'test.pid'];
const mode = (p: string): number => statSync(p).mode & 0o7777;

for (const strategy of ['rsync', 'mv'] as const) {
  test(`${strategy}: reference fixture with excludes keeps test.pid and drops baz (behaviour.md section 9)`, async (t) => {
    const s = new Scenario(t);
    mkdirSync(s.dest);
    writeFileSync(path.join(s.dest, 'test.pid'), '123');
    writeFileSync(path.join(s.dest, 'stale.txt'), 'old version');
    s.manifest(`${s.archive(REFERENCE)}sync_strategy: ${strategy}\ndest_mode: 0711\nexcludes:\n  - "*.pid"\n  - baz\n`);
    const r = await s.run('manifest.yml\n'.replace(/^/, `${s.root}/`));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(listTree(s.dest), REFERENCE_AFTER_EXCLUDES);
    assert.equal(readFileSync(path.join(s.dest, 'test.pid'), 'utf8'), '123');
    assert.equal(readFileSync(path.join(s.dest, 'bar'), 'utf8'), 'bar\n');
    assert.equal(mode(s.dest), 0o711);
    assert.deepEqual(s.leftovers(), []);
  });

  test(`${strategy}: exclude_from reads the pattern file from the archive and deploys it`, async (t) => {
    const s = new Scenario(t);
    mkdirSync(s.dest);
    writeFileSync(path.join(s.dest, 'test.pid'), '123');
    s.manifest(`${s.archive(REFERENCE)}sync_strategy: ${strategy}\nexclude_from: exclude.txt\n`);
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(listTree(s.dest), REFERENCE_AFTER_EXCLUDES);
    assert.equal(mode(s.dest), 0o755, 'default dest_mode');
  });

  test(`${strategy}: dest_mode applies whether or not the archive has a ./ entry`, async (t) => {
    const s = new Scenario(t);
    s.manifest(`${s.archive(tar([{ path: 'index.html', body: 'hi' }]))}sync_strategy: ${strategy}\ndest_mode: 0711\n`);
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(mode(s.dest), 0o711);
    assert.equal(readFileSync(path.join(s.dest, 'index.html'), 'utf8'), 'hi');
  });

  test(`${strategy}: modes, mtimes and symlinks come out exactly as in the archive`, async (t) => {
    const s = new Scenario(t);
    const archive = tgz([
      { path: 'bin/', type: 'dir', mode: 0o750, mtime: 1_000_000_000 },
      { path: 'bin/run', body: '#!/bin/sh\n', mode: 0o4755, mtime: 1_100_000_000 },
      { path: 'secret', body: 'k', mode: 0o600 },
      { path: 'ro/', type: 'dir', mode: 0o555, mtime: 1_200_000_000 },
      { path: 'ro/file', body: 'x', mode: 0o444 },
      { path: 'current', type: 'symlink', linkpath: 'bin/run', mtime: 1_300_000_000 },
      { path: 'bin/config', type: 'symlink', linkpath: '/etc/app/config.yml' },
      { path: 'bin/shared', type: 'symlink', linkpath: '../../shared/log' },
    ]);
    s.manifest(`${s.archive(archive, 'app.tgz')}sync_strategy: ${strategy}\n`);
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(mode(path.join(s.dest, 'bin')), 0o750);
    assert.equal(mode(path.join(s.dest, 'bin/run')), 0o4755);
    assert.equal(mode(path.join(s.dest, 'secret')), 0o600);
    assert.equal(mode(path.join(s.dest, 'ro')), 0o555);
    assert.equal(mode(path.join(s.dest, 'ro/file')), 0o444);
    assert.equal(statSync(path.join(s.dest, 'bin')).mtimeMs, 1_000_000_000_000);
    assert.equal(statSync(path.join(s.dest, 'bin/run')).mtimeMs, 1_100_000_000_000);
    assert.equal(statSync(path.join(s.dest, 'ro')).mtimeMs, 1_200_000_000_000);
    assert.equal(readlinkSync(path.join(s.dest, 'current')), 'bin/run');
    assert.equal(lstatSync(path.join(s.dest, 'current')).mtimeMs, 1_300_000_000_000);
    assert.equal(readlinkSync(path.join(s.dest, 'bin/config')), '/etc/app/config.yml');
    assert.equal(readlinkSync(path.join(s.dest, 'bin/shared')), '../../shared/log');
  });
}

test("rsync: with --rsync-verbose the rsync program runs, with Go stretcher's argv and --checksum; the flag replaces -v", async (t) => {
  const s = new Scenario(t);
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'old'), 'old');
  s.manifest(`${s.archive(REFERENCE)}exclude_from: exclude.txt\nexcludes: ["*.sock"]\n`);
  const merged = await s.run(`${s.root}/manifest.yml`);
  assert.equal(merged.code, 0, merged.stderr);
  assert.match(merged.stderr, /sync: \S+\/app updated in \S+: 3 added, 0 replaced, 1 removed, 0 already as in the archive/);
  assert.doesNotMatch(merged.stderr, /rsync -a/, 'without the flag, stretcher merges the tree itself');
  writeFileSync(path.join(s.dest, 'old'), 'old');
  const r = await s.run(`${s.root}/manifest.yml`, { args: ['--rsync-verbose=-v'] });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /rsync -a --delete --checksum -v --exclude-from \S+\/exclude\.txt --exclude \*\.sock \S+\/ \S+\/app\//);
  assert.match(r.stderr, /sending incremental file list/);
  const quiet = await s.run(`${s.root}/manifest.yml`, { args: ['-rsync-verbose', ''] });
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.match(quiet.stderr, /rsync -a --delete --checksum --exclude-from/);
  assert.doesNotMatch(quiet.stderr, /sending incremental file list/);
  const stats = await s.run(`${s.root}/manifest.yml`, { args: ['--rsync-verbose=--stats'] });
  assert.match(stats.stderr, /Number of files: /);
});

test('rsync: when the rsync program fails, its own reason is in the error and its error lines are logged as errors', async (t) => {
  const s = new Scenario(t);
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'old'), 'old');
  s.manifest(`${s.archive(tar([{ path: 'new' }]))}commands:\n  failure: ['echo "$STRETCHER_ERROR" > ${s.out}/error']\n`);
  const r = await s.run(`${s.root}/manifest.yml`, { args: ['--rsync-verbose=--no-such-rsync-option'] });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /ERROR: rsync: .*no-such-rsync-option/, "rsync's stderr at error level");
  assert.match(r.stderr, /ERROR: deploy failed: sync to \S+ failed: rsync exited with status 1: .*no-such-rsync-option/);
  assert.match(readFileSync(`${s.out}/error`, 'utf8'), /rsync exited with status 1: .*no-such-rsync-option/);
  assert.deepEqual(listTree(s.dest), ['old']);
});

test('rsync: --delete removes files the new version no longer has', async (t) => {
  const s = new Scenario(t);
  s.manifest(s.archive(tar([{ path: 'a' }, { path: 'b' }])));
  assert.equal((await s.run(`${s.root}/manifest.yml`)).code, 0);
  s.manifest(s.archive(tar([{ path: 'a', body: 'v2' }])));
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['a']);
});

test('mv: replaces an existing dest (Go refused), and stages beside it', async (t) => {
  const s = new Scenario(t);
  mkdirSync(path.join(s.dest, 'old'), { recursive: true });
  s.manifest(`${s.archive(tar([{ path: 'new' }]))}sync_strategy: mv\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['new']);
  assert.deepEqual(s.leftovers(), []);
});

for (const post of ['true', 'false']) {
  test(`mv: the previous dest is removed while post runs, and is gone before the ${post === 'true' ? 'success' : 'failure'} commands run`, async (t) => {
    const s = new Scenario(t);
    for (let d = 0; d < 20; d++) {
      mkdirSync(path.join(s.dest, `old${d}`), { recursive: true });
      for (let f = 0; f < 150; f++) writeFileSync(path.join(s.dest, `old${d}`, `f${f}`), 'previous');
    }
    const seen = path.join(s.root, 'seen');
    const look = `ls -a ${path.dirname(s.dest)} | grep -c stretcher-old > ${seen}; true`;
    s.manifest(`${s.archive(tar([{ path: 'new' }]))}sync_strategy: mv\ncommands:\n  post: ["${post}"]\n  success: ["${look}"]\n  failure: ["${look}"]\n`);
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, post === 'true' ? 0 : 1, r.stderr);
    assert.deepEqual(listTree(s.dest), ['new']);
    assert.equal(readFileSync(seen, 'utf8').trim(), '0', 'the old tree was still there');
    assert.deepEqual(s.leftovers(), []);
  });
}

test('mv: excluded directories in dest are carried over whole', async (t) => {
  const s = new Scenario(t);
  mkdirSync(path.join(s.dest, 'log/2026'), { recursive: true });
  writeFileSync(path.join(s.dest, 'log/2026/app.log'), 'keep me');
  mkdirSync(path.join(s.dest, 'tmp/cache'), { recursive: true });
  writeFileSync(path.join(s.dest, 'tmp/cache/x'), 'keep');
  s.manifest(`${s.archive(tar([{ path: 'app.js' }, { path: 'log/', type: 'dir' }, { path: 'log/README', body: 'from archive' }]))}sync_strategy: mv\nexcludes: ["/log/", "cache/"]\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['app.js', 'log/', 'log/2026/', 'log/2026/app.log', 'tmp/', 'tmp/cache/', 'tmp/cache/x']);
  assert.equal(readFileSync(path.join(s.dest, 'log/2026/app.log'), 'utf8'), 'keep me');
});

test('mv: a dest that is a symlink is refused and left as it was', async (t) => {
  const s = new Scenario(t);
  mkdirSync(path.join(s.root, 'real'));
  (await import('node:fs')).symlinkSync(path.join(s.root, 'real'), s.dest);
  s.manifest(`${s.archive(tar([{ path: 'a' }]))}sync_strategy: mv\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /dest \S+ is a symlink \(to \S+\/real\); the mv strategy deploys into a real directory: point dest at the directory itself, or use sync_strategy: release/);
  assert.ok(lstatSync(s.dest).isSymbolicLink());
  assert.deepEqual(s.leftovers(), []);
});

test('rsync creates dest when only its last component is missing', async (t) => {
  const s = new Scenario(t);
  assert.equal(existsSync(s.dest), false);
  s.manifest(s.archive(REFERENCE));
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['bar', 'exclude.txt', 'foo/', 'foo/baz']);
});

test('rsync into an absent or empty dest moves the unpacked tree into place: same result, no second copy', async (t) => {
  const s = new Scenario(t);
  s.manifest(`${s.archive(REFERENCE)}dest_mode: 0711\nexcludes: ["baz"]\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /rsync: \S+ was empty, so the unpacked tree was moved into place instead of copied/);
  assert.doesNotMatch(r.stderr, /rsync -a --delete/);
  assert.deepEqual(listTree(s.dest), ['bar', 'exclude.txt', 'foo/']);
  assert.equal(mode(s.dest), 0o711);
  assert.equal(statSync(path.join(s.dest, 'bar')).mtimeMs, Date.parse('2014-11-17T11:22:33Z'));
  assert.deepEqual(s.leftovers(), []);
  // An empty directory counts as empty too; anything in it means a merge.
  const again = await s.run(`${s.root}/manifest.yml`);
  assert.match(again.stderr, /sync: \S+ updated in \S+: 0 added, 0 replaced, 0 removed, 2 already as in the archive/);
});

test('rsync into an empty dest that is a mount point merges into it (the directory cannot be replaced)', async (t) => {
  const s = new Scenario(t);
  mkdirSync(s.dest);
  await withTmpfs(t, s.dest, 'size=8m,mode=0755', async () => {
    s.manifest(s.archive(REFERENCE));
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /sync: \S+ updated in \S+: 3 added/);
    assert.deepEqual(listTree(s.dest), ['bar', 'exclude.txt', 'foo/', 'foo/baz']);
    // A world-writable mount point would have to be replaced whole, and cannot be: refused, and said why.
    chmodSync(s.dest, 0o1777);
    const refused = await s.run(`${s.root}/manifest.yml`);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /refusing to deploy to \S+: it is a mount point and is writable by everyone, mode 1777, so another user could swap what stretcher works on in it/);
    assert.deepEqual(s.leftovers(), []);
  });
});

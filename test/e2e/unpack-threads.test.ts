import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { listTree, Scenario, WRITER_THREADS } from '../helpers/scenario.js';
import { sha1, tar, tgz, type TarEntry } from '../helpers/tar.js';

// Past this many files, with creating files counted as slow (WRITER_THREADS), an archive's files are written
// by writer threads (src/unpack/tar/unpacker.ts); every test here puts its interesting entries after it, so
// they go through the threads.
const ON_MAIN_THREAD = 500;

function filler(n: number): TarEntry[] {
  return Array.from({ length: n }, (_, i) => ({ path: `fill/d${i % 20}/f${i}.txt`, body: `file ${i}\n`, mode: 0o644, mtime: 1_600_000_000 + i }));
}

/**
 * Modes the umask would clear, special bits, and owners other than ours, on the main thread (the first
 * entries) and on the writer threads (after ON_MAIN_THREAD): files are created with their mode when that
 * gives it exactly, and chmod'ed or chown'ed only when it does not.
 */
function modesAndOwners(where: string): TarEntry[] {
  return [
    { path: `${where}/world-writable`, body: 'w', mode: 0o666, uid: 4321, gid: 8765 },
    { path: `${where}/group-writable`, body: 'g', mode: 0o775 },
    { path: `${where}/plain`, body: 'p', mode: 0o644, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
    { path: `${where}/setgid`, body: 's', mode: 0o2755, uid: 4321, gid: 8765 },
  ];
}

function assertModesAndOwners(dest: string, where: string): void {
  const st = (p: string) => lstatSync(path.join(dest, where, p));
  assert.equal(st('world-writable').mode & 0o7777, 0o666, `${where}: a mode the umask would clear`);
  assert.equal(st('group-writable').mode & 0o7777, 0o775, where);
  assert.equal(st('plain').mode & 0o7777, 0o644, where);
  assert.equal(st('setgid').mode & 0o7777, 0o2755, `${where}: chown must not clear setgid`);
  if (process.getuid?.() === 0) {
    assert.deepEqual([st('world-writable').uid, st('world-writable').gid], [4321, 8765], `${where}: owner kept as root`);
    assert.deepEqual([st('setgid').uid, st('setgid').gid], [4321, 8765], where);
  }
  assert.equal(st('plain').uid, process.getuid?.());
}

test('writer threads: a large archive comes out exact (contents, modes, mtimes, big files, duplicates, hard links)', async (t) => {
  const s = new Scenario(t, { env: WRITER_THREADS });
  // The usual umask, so that modes it would clear are tested whatever the test runner's is.
  const umask = process.umask(0o022);
  t.after(() => process.umask(umask));
  const big = Buffer.alloc(700 * 1024 + 13);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
  const entries: TarEntry[] = [
    ...modesAndOwners('main'),
    ...filler(ON_MAIN_THREAD + 700),
    ...modesAndOwners('threads'),
    { path: 'bin/tool', body: '#!/bin/sh\necho hi\n', mode: 0o4755, mtime: 1_500_000_000 },
    { path: 'private/key', body: 'secret', mode: 0o600, mtime: 1_500_000_001 },
    { path: 'empty', body: '', mode: 0o640, mtime: 1_500_000_002 },
    { path: 'blob.bin', body: big, mode: 0o644, mtime: 1_500_000_003 },
    { path: 'dup', body: 'first', mode: 0o644 },
    { path: 'dup', body: 'second, longer', mode: 0o600, mtime: 1_500_000_004 },
    { path: 'linked', type: 'hardlink', linkpath: 'private/key' },
    { path: 'ro', type: 'dir', mode: 0o555, mtime: 1_400_000_000 },
    { path: 'ro/inside', body: 'in a read-only dir', mode: 0o444 },
  ];
  s.manifest(s.archive(tgz(entries), 'app.tgz'));
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);

  assertModesAndOwners(s.dest, 'main');
  assertModesAndOwners(s.dest, 'threads');
  const files = listTree(s.dest).filter((p) => p.startsWith('fill/') && !p.endsWith('/'));
  assert.equal(files.length, ON_MAIN_THREAD + 700);
  for (const i of [0, ON_MAIN_THREAD, ON_MAIN_THREAD + 699]) {
    const file = path.join(s.dest, `fill/d${i % 20}/f${i}.txt`);
    assert.equal(readFileSync(file, 'utf8'), `file ${i}\n`);
    assert.equal(statSync(file).mtimeMs, (1_600_000_000 + i) * 1000);
  }
  const mode = (p: string) => lstatSync(path.join(s.dest, p)).mode & 0o7777;
  assert.equal(mode('bin/tool'), 0o4755);
  assert.equal(mode('private/key'), 0o600);
  assert.equal(statSync(path.join(s.dest, 'bin/tool')).mtimeMs, 1_500_000_000_000);
  assert.equal(statSync(path.join(s.dest, 'empty')).size, 0);
  assert.equal(mode('empty'), 0o640);
  assert.ok(readFileSync(path.join(s.dest, 'blob.bin')).equals(big), 'a file split across batches is whole');
  assert.equal(readFileSync(path.join(s.dest, 'dup'), 'utf8'), 'second, longer');
  assert.equal(mode('dup'), 0o600);
  // The rsync strategy makes each name of a hard link a file of its own, as rsync -a does.
  assert.equal(readFileSync(path.join(s.dest, 'linked'), 'utf8'), readFileSync(path.join(s.dest, 'private/key'), 'utf8'));
  assert.notEqual(statSync(path.join(s.dest, 'linked')).ino, statSync(path.join(s.dest, 'private/key')).ino);
  assert.equal(mode('linked'), 0o600);
  assert.equal(mode('ro'), 0o555);
  assert.equal(statSync(path.join(s.dest, 'ro')).mtimeMs, 1_400_000_000_000);
  assert.equal(readFileSync(path.join(s.dest, 'ro/inside'), 'utf8'), 'in a read-only dir');
  assert.deepEqual(s.leftovers(), []);
});

/**
 * Two layers from files beside the manifest: the first leaves `planted`, the second is big and hostile.
 * Staging sits beside dest (srv/.app.stretcher-new-*), so a link to ../../outside reaches `outside`.
 */
async function layered(t: import('node:test').TestContext, first: TarEntry[], second: TarEntry[]) {
  const s = new Scenario(t, { env: WRITER_THREADS });
  const outside = path.join(s.root, 'outside');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'target'), 'untouched');
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'v1'), 'v1');
  const a = tar(first);
  const b = tar([...filler(ON_MAIN_THREAD + 100), ...second]);
  writeFileSync(path.join(s.root, 'a.tar'), a);
  writeFileSync(path.join(s.root, 'b.tar'), b);
  s.manifest(
    `layers:\n  - src: a.tar\n    checksum: ${sha1(a)}\n  - src: b.tar\n    checksum: ${sha1(b)}\ndest: ${s.dest}\n` + `commands:\n  failure: ["echo \\"$STRETCHER_ERROR\\" > ${s.out}/error"]\n`,
  );
  const r = await s.run(`${s.root}/manifest.yml`);
  const error = r.code === 0 ? '' : readFileSync(`${s.out}/error`, 'utf8').trim();
  return { s, r, error, outside };
}

test("writer threads: a file replaces an earlier layer's symlink without writing through it", async (t) => {
  const { s, r, outside } = await layered(t, [{ path: 'cfg', type: 'symlink', linkpath: '../../outside/target' }], [{ path: 'cfg', body: 'layer two', mode: 0o640 }]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(path.join(outside, 'target'), 'utf8'), 'untouched');
  assert.ok(lstatSync(path.join(s.dest, 'cfg')).isFile());
  assert.equal(readFileSync(path.join(s.dest, 'cfg'), 'utf8'), 'layer two');
  assert.deepEqual(s.leftovers(), []);
});

test("a hard link through an earlier layer's symlink fails the deploy; nothing outside is linked", async (t) => {
  const { s, r, error, outside } = await layered(t, [{ path: 'escape', type: 'symlink', linkpath: '../../outside' }], [{ path: 'h', type: 'hardlink', linkpath: 'escape/target' }]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(error, 'refusing the archive: hard link "h" points to "escape/target", which passes through a symlink');
  assert.equal(statSync(path.join(outside, 'target')).nlink, 1);
  assert.deepEqual(listTree(s.dest), ['v1']);
  assert.deepEqual(s.leftovers(), []);
});

test('writer threads: a file where an earlier layer has a directory fails the deploy; dest untouched', async (t) => {
  const { s, r, error, outside } = await layered(t, [{ path: 'x/keep', body: 'k' }], [{ path: 'x', body: 'not a dir' }]);
  assert.equal(r.code, 1, r.stderr);
  assert.equal(error, 'refusing the archive: archive entry "x" is a file where a directory already is');
  assert.deepEqual(listTree(s.dest), ['v1']);
  assert.deepEqual(readdirSync(outside), ['target']);
  assert.deepEqual(s.leftovers(), []);
});

test('writer threads: an archive cut off inside a file fails cleanly', async (t) => {
  const s = new Scenario(t, { env: WRITER_THREADS });
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'v1'), 'v1');
  const whole = tar([...filler(ON_MAIN_THREAD + 50), { path: 'last', body: Buffer.alloc(100_000, 1) }]);
  // The checksum is the cut archive's: only the tar structure says it is incomplete.
  s.manifest(s.archive(whole.subarray(0, whole.length - 1024 - 50_000)));
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /cannot unpack the archive: /);
  assert.deepEqual(listTree(s.dest), ['v1']);
  assert.deepEqual(s.leftovers(), []);
});

/** A file of many batches among entries the threads must get exactly right, after the first 500 files. */
function bigLate(): { entries: TarEntry[]; noise: Buffer } {
  // Random bytes do not compress: the .tgz stays large.
  const noise = randomBytes(9 << 20);
  return {
    noise,
    entries: [
      ...filler(ON_MAIN_THREAD),
      ...modesAndOwners('late'),
      { path: 'dup', body: 'first', mode: 0o644 },
      { path: 'dup', body: 'second', mode: 0o600, mtime: 1_500_000_004 },
      { path: 'linked', type: 'hardlink', linkpath: 'late/plain' },
      { path: 'ro', type: 'dir', mode: 0o555, mtime: 1_400_000_000 },
      { path: 'ro/inside', body: 'in a read-only dir', mode: 0o444 },
      { path: 'noise.bin', body: noise, mode: 0o644, mtime: 1_500_000_005 },
    ],
  };
}

// The main thread writes every file itself, and only when creating one costs more than the threshold (0.3 ms
// by default) on average does a writer thread take over, with a line in the log. Whether a disk here is slow
// varies (a cold start on a busy journal-less ext4 averaged 0.33 ms), so each case sets the threshold.
for (const slow of [false, true]) {
  test(`writer threads: a large archive comes out exact ${slow ? 'when creating files is slow (a writer thread takes over past 500 files)' : 'written on the main thread, where creating files is cheap (below the threshold)'}`, async (t) => {
    const s = new Scenario(t, { env: slow ? WRITER_THREADS : { STRETCHER_TEST_SLOW_CREATE_MS: '1000' } });
    const umask = process.umask(0o022);
    t.after(() => process.umask(umask));
    const { entries, noise } = bigLate();
    s.manifest(s.archive(tgz(entries), 'app.tgz'));
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 0, r.stderr);
    const handedOver = /unpacking: creating a file takes \d+\.\d\d ms, so a writer thread takes the files over/;
    if (slow) assert.match(r.stderr, handedOver);
    else assert.doesNotMatch(r.stderr, handedOver);
    assertModesAndOwners(s.dest, 'late');
    const mode = (p: string) => lstatSync(path.join(s.dest, p)).mode & 0o7777;
    assert.equal(readFileSync(path.join(s.dest, 'dup'), 'utf8'), 'second');
    assert.equal(mode('dup'), 0o600);
    // A file of its own with the target's bytes and mode, as rsync -a makes each name of a hard link.
    assert.ok(readFileSync(path.join(s.dest, 'linked')).equals(readFileSync(path.join(s.dest, 'late/plain'))));
    assert.notEqual(statSync(path.join(s.dest, 'linked')).ino, statSync(path.join(s.dest, 'late/plain')).ino);
    assert.equal(mode('linked'), mode('late/plain'));
    assert.equal(mode('ro'), 0o555);
    assert.equal(readFileSync(path.join(s.dest, 'ro/inside'), 'utf8'), 'in a read-only dir');
    assert.ok(readFileSync(path.join(s.dest, 'noise.bin')).equals(noise), 'a file of many batches is whole');
    assert.equal(statSync(path.join(s.dest, 'noise.bin')).mtimeMs, 1_500_000_005_000);
    assert.equal(listTree(s.dest).filter((p) => p.startsWith('fill/') && !p.endsWith('/')).length, ON_MAIN_THREAD);
    assert.deepEqual(s.leftovers(), []);
  });
}

test('writer threads: a large archive with a wrong checksum leaves dest and TMPDIR as they were', async (t) => {
  const s = new Scenario(t, { env: WRITER_THREADS });
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'v1'), 'v1');
  const archive = tgz(bigLate().entries);
  writeFileSync(path.join(s.root, 'app.tgz'), archive);
  s.manifest(`src: app.tgz\nchecksum: ${'0'.repeat(40)}\ndest: ${s.dest}\ncommands:\n  failure: ["cat > ${s.out}/log"]\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1, r.stderr);
  assert.match(readFileSync(path.join(s.out, 'log'), 'utf8'), /checksum mismatch/);
  assert.deepEqual(listTree(s.dest), ['v1']);
  assert.deepEqual(s.leftovers(), []);
});

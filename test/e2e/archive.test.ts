import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { listTree, Scenario } from '../helpers/scenario.js';
import { tar, tgz, type TarEntry } from '../helpers/tar.js';

/** Deploys `entries` over a dest holding v1 and returns the run, the failure error and what exists outside. */
async function deployHostile(t: import('node:test').TestContext, entries: TarEntry[], args: string[] = []) {
  const s = new Scenario(t);
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'v1'), 'v1');
  const outside = path.join(s.root, 'outside');
  mkdirSync(outside);
  s.manifest(`${s.archive(tar(entries))}commands:\n  failure: ["echo \\"$STRETCHER_ERROR\\" > ${s.out}/error"]\n`);
  const r = await s.run(`${s.root}/manifest.yml`, { args });
  const error = existsSync(`${s.out}/error`) ? readFileSync(`${s.out}/error`, 'utf8').trim() : '';
  return { s, r, error, outside: readdirSync(outside), rootEntries: readdirSync(s.root) };
}

test('an entry with .. fails the deploy; nothing is written outside, dest untouched', async (t) => {
  const { s, r, error, outside } = await deployHostile(t, [{ path: 'ok' }, { path: '../outside/evil', body: 'pwned' }]);
  assert.equal(r.code, 1);
  assert.match(error, /refusing archive entry "\.\.\/outside\/evil": its path leaves the staging directory/);
  assert.deepEqual(outside, []);
  assert.deepEqual(listTree(s.dest), ['v1']);
  assert.deepEqual(s.leftovers(), []);
});

test('a symlink no filesystem could hold (empty, longer than PATH_MAX) is a damaged archive, named; dest untouched', async (t) => {
  // symlink(2) reported these at the very end as bare ENOENT, ENAMETOOLONG, or a TypeError taken for a bug.
  for (const [target, why] of [
    ['', /cannot unpack the archive: the SymbolicLink entry "l" has no target/],
    ['a/'.repeat(2500), /cannot unpack "l": a symlink with a target of 5000 bytes \(the longest a symlink holds is 4095\)/],
  ] as const) {
    const { s, r, error } = await deployHostile(t, [
      { path: 'ok', body: 'x' },
      { path: 'l', type: 'symlink', pax: { linkpath: target } },
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(error, why);
    assert.doesNotMatch(r.stderr, /this is a bug/);
    assert.deepEqual(listTree(s.dest), ['v1']);
    assert.deepEqual(s.leftovers(), []);
  }
});

test('a name no filesystem could hold (a component over 255 bytes) is a damaged archive, named; dest untouched', async (t) => {
  const long = `dir/${'n'.repeat(300)}`;
  const { s, r, error } = await deployHostile(t, [
    { path: 'ok', body: 'x' },
    { path: 'x', body: 'y', pax: { path: long } },
  ]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(error, /cannot unpack "dir\/n+": a name longer than 255 bytes in its path/);
  assert.deepEqual(listTree(s.dest), ['v1']);
  assert.deepEqual(s.leftovers(), []);
});

test('absolute paths are stripped of their leading / (as GNU tar does), with a warning', async (t) => {
  const { s, r } = await deployHostile(t, [{ path: '/etc/app.conf', body: 'x' }]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['etc/', 'etc/app.conf']);
  assert.match(r.stderr, /WARN: archive: stripping \/ from absolute path/);
});

test('writing through a symlink the archive planted fails; nothing is written outside', async (t) => {
  const { s, r, error, outside } = await deployHostile(t, [
    { path: 'link', type: 'symlink', linkpath: '../outside' },
    { path: 'link/evil', body: 'pwned' },
  ]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(error, /refusing the archive: symlink "link" collides with an entry the archive puts inside or at that path/);
  assert.deepEqual(outside, []);
  assert.deepEqual(listTree(s.dest), ['v1']);
});

test('a symlink chain cannot be used to plant a link outside', async (t) => {
  const { r, error, outside } = await deployHostile(t, [
    { path: 'a', type: 'symlink', linkpath: '../outside' },
    { path: 'a/b', type: 'symlink', linkpath: '/etc/passwd' },
  ]);
  assert.equal(r.code, 1);
  assert.match(error, /passes through a symlink|collides/);
  assert.deepEqual(outside, []);
});

test('a hard link to a file outside the tree fails the deploy', async (t) => {
  const { s, r, error, rootEntries } = await deployHostile(t, [{ path: 'h', type: 'hardlink', linkpath: '../manifest.yml' }]);
  assert.equal(r.code, 1);
  assert.match(error, /refusing the archive: hard link "h" points to "\.\.\/manifest\.yml", outside the staging directory/);
  assert.ok(rootEntries.includes('manifest.yml'));
  assert.deepEqual(listTree(s.dest), ['v1']);
});

test('hard links inside the tree work', async (t) => {
  const { s, r } = await deployHostile(t, [
    { path: 'a', body: 'same' },
    { path: 'b', type: 'hardlink', linkpath: 'a' },
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(path.join(s.dest, 'b'), 'utf8'), 'same');
});

test("a directory entry that repeats gives the directory the last entry's mode, owner and mtime, as GNU tar does", async (t) => {
  const root = process.getuid?.() === 0;
  const { s, r } = await deployHostile(t, [
    { path: 'secrets/', type: 'dir', mode: 0o755, mtime: 100 },
    { path: 'secrets/key', body: 'key', mode: 0o600 },
    // Appended later (tar -r) to tighten it: this is what must hold.
    { path: 'secrets/', type: 'dir', mode: 0o700, mtime: 300, uid: 1001, gid: 1001 },
  ]);
  assert.equal(r.code, 0, r.stderr);
  const st = lstatSync(path.join(s.dest, 'secrets'));
  assert.equal(st.mode & 0o7777, 0o700);
  assert.equal(st.mtimeMs, 300_000);
  if (root) assert.equal(st.uid, 1001);
  assert.equal(readFileSync(path.join(s.dest, 'secrets', 'key'), 'utf8'), 'key');
});

test('a file dated before 1970 (a negative pax mtime) keeps its date, as GNU tar gives it; not today', async (t) => {
  const { s, r } = await deployHostile(t, [
    { path: 'old', body: 'old', pax: { mtime: '-100' } },
    { path: 'older', body: 'older', pax: { mtime: '-100.25' } },
    { path: 'dir/', type: 'dir', pax: { mtime: '-200' } },
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(lstatSync(path.join(s.dest, 'old')).mtimeMs, -100_000);
  assert.equal(lstatSync(path.join(s.dest, 'older')).mtimeMs, -100_250);
  assert.equal(lstatSync(path.join(s.dest, 'dir')).mtimeMs, -200_000);
});

test('device files and FIFOs are skipped with a warning', async (t) => {
  const { s, r } = await deployHostile(t, [{ path: 'null', type: 'chardev' }, { path: 'pipe', type: 'fifo' }, { path: 'app' }]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['app']);
  assert.match(r.stderr, /skipping archive entry "null": CharacterDevice entries are not unpacked/);
  assert.match(r.stderr, /skipping archive entry "pipe": FIFO entries are not unpacked/);
});

test('entry-count and size limits stop a bomb with a clear error; dest untouched', async (t) => {
  const many = Array.from({ length: 50 }, (_, i) => ({ path: `f${i}` }));
  const count = await deployHostile(t, many, ['--max-extract-entries', '20']);
  assert.equal(count.r.code, 1);
  assert.match(count.error, /the archive has more than 20 entries \(--max-extract-entries\)/);
  assert.deepEqual(listTree(count.s.dest), ['v1']);
  const size = await deployHostile(t, [{ path: 'zeros', body: Buffer.alloc(2_000_000) }], ['--max-extract-size', '1MB']);
  assert.equal(size.r.code, 1);
  assert.match(size.error, /the archive unpacks to more than 1\.00 MB \(--max-extract-size\)/);
  assert.deepEqual(size.s.leftovers(), []);
});

test('a highly compressible (sparse-like) archive within limits deploys: no ratio limit of 1000', async (t) => {
  const s = new Scenario(t);
  const zeros = tgz([{ path: 'disk.img', body: Buffer.alloc(20_000_000) }]);
  assert.ok(zeros.length * 1000 < 20_000_000, 'ratio above 1000');
  s.manifest(s.archive(zeros, 'a.tgz'));
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
});

test('formats are recognised by their bytes, not the name; others are named in the error', async (t) => {
  const s = new Scenario(t);
  // A gzip'd tar named .tar, and a plain tar named .tgz: both deploy.
  s.manifest(s.archive(tgz([{ path: 'gz' }]), 'misnamed.tar'), 'one.yml');
  s.manifest(s.archive(tar([{ path: 'plain' }]), 'misnamed.tgz'), 'two.yml');
  for (const m of ['one.yml', 'two.yml']) {
    const r = await s.run(`${s.root}/${m}`);
    assert.equal(r.code, 0, r.stderr);
  }
  const samples: [string, Buffer, RegExp][] = [
    ['a.tar.bz2', Buffer.from('BZh91AY&SY' + 'x'.repeat(600)), /the archive is bzip2-compressed; stretcher unpacks tar, gzip-compressed tar \(.tar, .tar.gz, .tgz\) and zip/],
    ['a.tar.xz', Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(600)]), /xz-compressed/],
    ['a.tar.zst', Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(600)]), /zstd-compressed/],
    ['a.zip', Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(600)]), /cannot unpack the zip archive/],
    ['index.html', Buffer.from('<html>' + ' '.repeat(600)), /not a tar, gzip or zip archive/],
    ['empty', Buffer.alloc(0), /not a tar, gzip or zip archive/],
    ['bad.tgz', gzipSync(Buffer.from('not a tar at all'.repeat(100))), /cannot unpack the archive/],
  ];
  for (const [name, data, expected] of samples) {
    s.manifest(s.archive(data, name), 'bad.yml');
    const r = await s.run(`${s.root}/bad.yml`);
    assert.equal(r.code, 1, name);
    assert.match(r.stderr, expected, name);
  }
  assert.deepEqual(s.leftovers(), []);
});

test('an empty archive, one cut inside a header, sparse files: each named, dest untouched; a volume label is skipped', async (t) => {
  const empty = await deployHostile(t, []);
  assert.equal(empty.r.code, 1);
  assert.equal(empty.error, 'cannot unpack the archive: it has no entries');
  assert.deepEqual(listTree(empty.s.dest), ['v1']);
  const s = new Scenario(t);
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'v1'), 'v1');
  s.manifest(s.archive(tar([{ path: 'a', body: 'a' }, { path: 'b' }]).subarray(0, 1024 + 100)));
  const cut = await s.run(`${s.root}/manifest.yml`);
  assert.equal(cut.code, 1);
  assert.match(cut.stderr, /deploy failed: cannot unpack the archive: it ends inside a tar header, at byte 1024\n/);
  assert.deepEqual(listTree(s.dest), ['v1']);
  assert.deepEqual(s.leftovers(), []);
  // The same cut in a tar.gz names where its gzip stream broke; damaged gzip data too.
  const gz = gzipSync(tar([{ path: 'a', body: randomBytes(40_000) }]));
  for (const [bytes, why] of [
    [gz.subarray(0, 150), /cannot unpack the archive: it is cut short: its 150 bytes of gzip end mid-stream, after \d+ bytes inflated\n/],
    [Buffer.concat([gz.subarray(0, 10), Buffer.alloc(200, 0xff)]), /cannot unpack the archive: its gzip data is damaged \(.+\), 0 bytes into the inflated tar, of the archive's 210 bytes\n/],
  ] as const) {
    s.manifest(s.archive(bytes, 'app.tgz'));
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 1);
    assert.match(r.stderr, why);
    assert.deepEqual(listTree(s.dest), ['v1']);
  }
  // Sparse files, as GNU tar writes them in both its formats, cannot be rebuilt: the deploy fails, naming the
  // file (node-tar skipped the gnu one silently, and wrote the pax one's sparse map out as the file).
  const src = path.join(s.root, 'sparse-src');
  mkdirSync(src);
  writeFileSync(path.join(src, 'app'), 'app');
  writeFileSync(path.join(src, 'holes.img'), '');
  truncateSync(path.join(src, 'holes.img'), 4 << 20);
  const fd = openSync(path.join(src, 'holes.img'), 'r+');
  writeSync(fd, 'data', 1_000_000);
  closeSync(fd);
  for (const format of ['gnu', 'pax']) {
    const made = path.join(s.root, `sparse-${format}.tar`);
    execFileSync('tar', ['--sparse', `--format=${format}`, '-cf', made, '-C', src, '.']);
    s.manifest(s.archive(readFileSync(made), `sparse-${format}-copy.tar`), 'sparse.yml');
    const r = await s.run(`${s.root}/sparse.yml`);
    assert.equal(r.code, 1, format);
    assert.match(r.stderr, /deploy failed: cannot unpack "\.\/holes\.img": it is a sparse file \(tar --sparse\), which stretcher does not unpack: make the archive without --sparse\n/, format);
    assert.deepEqual(listTree(s.dest), ['v1'], format);
  }
  // A tape volume label is metadata: skipped with a warning, the rest deployed.
  const labelled = path.join(s.root, 'labelled.tar');
  execFileSync('tar', ['--format=gnu', '-V', 'release 42', '-cf', labelled, '-C', src, 'app']);
  s.manifest(s.archive(readFileSync(labelled), 'labelled-copy.tar'), 'labelled.yml');
  const r = await s.run(`${s.root}/labelled.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /skipping archive entry "release 42": TapeVolumeHeader entries are not unpacked/);
  assert.deepEqual(listTree(s.dest), ['app']);
  assert.deepEqual(s.leftovers(), []);
});

/** Every entry below root: type, mode, mtime, and content or link target, as a deploy must reproduce them. */
function describeTree(root: string): string[] {
  return listTree(root).map((rel) => {
    const abs = path.join(root, rel);
    const st = lstatSync(abs);
    const what = st.isSymbolicLink() ? `-> ${readlinkSync(abs)}` : st.isFile() ? createHash('sha1').update(readFileSync(abs)).digest('hex') : 'dir';
    // A directory's mtime changes as its entries are made; files and links keep the archive's.
    const mtime = st.isDirectory() ? '' : ` ${Math.floor(st.mtimeMs / 1000)}`;
    return `${rel} ${(st.mode & 0o7777).toString(8)}${mtime} ${what} links=${st.isFile() ? st.nlink : ''}`;
  });
}

test('archives made by GNU tar deploy exactly, in each of its formats (long names, pax, links, modes)', async (t) => {
  const s = new Scenario(t);
  const src = path.join(s.root, 'src');
  const deep = ['a'.repeat(60), 'b'.repeat(60), 'ç'.repeat(30), 'd'.repeat(60)].join('/');
  mkdirSync(path.join(src, deep), { recursive: true });
  writeFileSync(path.join(src, deep, `${'long-file-name-'.repeat(8)}.txt`), 'deep and long\n');
  writeFileSync(path.join(src, 'exact-512'), Buffer.alloc(512, 1));
  writeFileSync(path.join(src, 'empty'), '');
  writeFileSync(path.join(src, 'run.sh'), '#!/bin/sh\n', { mode: 0o751 });
  chmodSync(path.join(src, 'run.sh'), 0o751);
  writeFileSync(path.join(src, 'big.bin'), randomBytes(3 * 1024 * 1024 + 7));
  symlinkSync(`${deep}/${'long-file-name-'.repeat(8)}.txt`, path.join(src, 'long-link'));
  linkSync(path.join(src, 'exact-512'), path.join(src, 'hard'));
  for (const f of listTree(src)) if (!f.endsWith('/')) lutimesSync(path.join(src, f), 1_600_000_000, 1_600_000_000);
  const expected = describeTree(src);
  for (const format of ['gnu', 'oldgnu', 'pax', 'posix']) {
    const archive = path.join(s.root, `${format}.tgz`);
    execFileSync('tar', [`--format=${format}`, '-czf', archive, '-C', src, '.']);
    s.manifest(`${s.archive(readFileSync(archive), `${format}-copy.tgz`)}sync_strategy: mv\n`, `${format}.yml`);
    const r = await s.run(`${s.root}/${format}.yml`);
    assert.equal(r.code, 0, `${format}: ${r.stderr}`);
    assert.deepEqual(describeTree(s.dest), expected, format);
  }
  assert.deepEqual(s.leftovers(), []);
});

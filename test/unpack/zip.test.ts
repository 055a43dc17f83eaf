import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { StretcherError } from '../../src/shared/errors.js';
import { unzipInto } from '../../src/unpack/zip.js';
import { capture } from '../helpers/log.js';
import { tempDir } from '../helpers/tmp.js';
import { zip, type ZipEntry } from '../helpers/zip.js';

const LIMITS = { maxBytes: 1 << 30, maxEntries: 100_000 };
/** Above the size zip.ts reads whole, so that entry takes yauzl's streamed path. */
const BIG = 9 << 20;

async function unpack(t: TestContext, entries: ZipEntry[]): Promise<string> {
  const dir = tempDir(t);
  const file = path.join(dir, 'a.zip');
  writeFileSync(file, zip(entries));
  const staging = path.join(dir, 'staging');
  mkdirSync(staging);
  await unzipInto(file, staging, LIMITS, capture(false).log);
  return staging;
}

function corrupt(message: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof StretcherError, String(err));
    assert.equal(err.code, 'ARCHIVE_CORRUPT');
    assert.match(err.message, message);
    return true;
  };
}

test('unzipInto: small files, a streamed large one, stored ones, a directory and a symlink land exactly', async (t) => {
  const mtime = new Date(2025, 5, 7, 8, 9, 10);
  const entries: ZipEntry[] = [{ path: 'dir/', mode: 0o040750, mtime }];
  for (let i = 0; i < 300; i++) entries.push({ path: `dir/f${i}.txt`, body: `file ${i}\n`.repeat(i + 1), mode: 0o100600 | (i % 2 ? 0o55 : 0), mtime });
  const big = Buffer.alloc(BIG, 'x');
  big.write('start', 0);
  big.write('end', BIG - 3);
  entries.push({ path: 'big.bin', body: big, mtime });
  entries.push({ path: 'raw.txt', body: 'stored, not deflated\n', stored: true, mtime });
  entries.push({ path: 'raw-big.bin', body: big, stored: true, mtime });
  entries.push({ path: 'link', symlink: 'dir/f3.txt', mtime });
  const staging = await unpack(t, entries);

  for (let i = 0; i < 300; i++) {
    const f = path.join(staging, `dir/f${i}.txt`);
    assert.equal(readFileSync(f, 'utf8'), `file ${i}\n`.repeat(i + 1));
    const st = lstatSync(f);
    assert.equal(st.mode & 0o7777, 0o600 | (i % 2 ? 0o55 : 0), f);
    assert.equal(st.mtimeMs, mtime.getTime(), f);
  }
  assert.ok(readFileSync(path.join(staging, 'big.bin')).equals(big));
  assert.ok(readFileSync(path.join(staging, 'raw-big.bin')).equals(big));
  assert.equal(readFileSync(path.join(staging, 'raw.txt'), 'utf8'), 'stored, not deflated\n');
  assert.equal(readlinkSync(path.join(staging, 'link')), 'dir/f3.txt');
  assert.equal(lstatSync(path.join(staging, 'link')).mtimeMs, mtime.getTime());
  const dir = lstatSync(path.join(staging, 'dir'));
  assert.equal(dir.mode & 0o7777, 0o750);
  assert.equal(dir.mtimeMs, mtime.getTime());
});

test('unzipInto: an entry that inflates to more than its declared size is refused, small or streamed', async (t) => {
  await assert.rejects(unpack(t, [{ path: 'a', body: 'x'.repeat(1000), declaredSize: 10 }]), corrupt(/cannot unpack a: too many bytes in the stream/));
  await assert.rejects(unpack(t, [{ path: 'b', body: Buffer.alloc(BIG + 100), declaredSize: BIG }]), corrupt(/cannot unpack b: too many bytes in the stream/));
  await assert.rejects(unpack(t, [{ path: 'c', body: 'x'.repeat(1000), declaredSize: 999, stored: true }]), corrupt(/size mismatch for stored file: 1000 != 999/));
});

test('unzipInto: an entry that inflates to less than its declared size is refused', async (t) => {
  await assert.rejects(unpack(t, [{ path: 'a', body: 'x'.repeat(1000), declaredSize: 2000 }]), corrupt(/cannot unpack a: not enough bytes in the stream\. expected 2000\. got only 1000/));
  await assert.rejects(unpack(t, [{ path: 'b', body: Buffer.alloc(BIG), declaredSize: BIG + 5 }]), corrupt(/cannot unpack b: not enough bytes/));
});

test('unzipInto: deflate data that is not deflate is refused, not written', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'a.zip');
  const archive = zip([{ path: 'a', body: 'hello hello hello hello hello' }]);
  // The compressed bytes follow the 30-byte local header and the one-byte name: 0xff is a reserved block type.
  archive[31] = 0xff;
  writeFileSync(file, archive);
  mkdirSync(path.join(dir, 's'));
  await assert.rejects(unzipInto(file, path.join(dir, 's'), LIMITS, capture(false).log), corrupt(/cannot unpack a: /));
});

test('unzipInto: encrypted entries and unknown compression methods are refused', async (t) => {
  await assert.rejects(unpack(t, [{ path: 'a', body: 'secret', encrypted: true }]), corrupt(/encrypted/));
  await assert.rejects(unpack(t, [{ path: 'b', body: 'bzip2?', method: 12 }]), corrupt(/unsupported compression method: 12/));
});

test('unzipInto: a large entry that fails says why, and its file is closed once', async (t) => {
  // A WriteStream destroyed by a failing pipeline closed its descriptor from the pool after unzipInto had
  // closed it too: the next deploy's write failed with EBADF, and a number reused meanwhile would be closed
  // under whoever held it.
  for (let i = 0; i < 3; i++) {
    await assert.rejects(unpack(t, [{ path: 'b', body: Buffer.alloc(BIG + 100), declaredSize: BIG }]), corrupt(/cannot unpack b: too many bytes/));
    await assert.rejects(unpack(t, [{ path: 'c', body: Buffer.alloc(BIG), declaredSize: BIG + 5 }]), corrupt(/cannot unpack c: not enough bytes/));
  }
});

test('unzipInto: a symlink target no filesystem could hold is refused before it is read', async (t) => {
  await assert.rejects(unpack(t, [{ path: 'l', symlink: 'a'.repeat(5000) }]), corrupt(/cannot unpack "l": a symlink with a target of 5000 bytes \(the longest a symlink holds is 4095\)/));
  await assert.rejects(unpack(t, [{ path: 'l', symlink: 'a\0b' }]), corrupt(/cannot unpack "l": a symlink with a NUL byte in its target/));
  await assert.rejects(unpack(t, [{ path: 'l', symlink: '' }]), corrupt(/cannot unpack "l": a symlink with an empty target/));
  // Eight records sharing one deflated 400 MiB "target" (a 400 KB zip) made 5 GB of strings, in a minute: the
  // size each record declares is judged first.
  const bomb: ZipEntry[] = [{ path: 'l0', symlink: 'a'.repeat(64 << 20) }];
  for (let i = 1; i < 8; i++) bomb.push({ path: `l${i}`, symlink: 'a', declaredSize: 64 << 20, sharesDataOf: 0 });
  await assert.rejects(unpack(t, bomb), corrupt(/cannot unpack "l0": a symlink with a target of 67108864 bytes/));
});

test('unzipInto: data whose CRC-32 is not the one its directory states is refused, small, streamed or a link', async (t) => {
  await assert.rejects(unpack(t, [{ path: 'a', body: 'hello', crc: 0xdeadbeef }]), corrupt(/cannot unpack a: its CRC-32 does not match its data/));
  await assert.rejects(unpack(t, [{ path: 'b', body: 'hello', crc: 0xdeadbeef, stored: true }]), corrupt(/its CRC-32 does not match/));
  await assert.rejects(unpack(t, [{ path: 'c', body: Buffer.alloc(BIG), crc: 0xdeadbeef }]), corrupt(/cannot unpack c: its CRC-32 does not match/));
  await assert.rejects(unpack(t, [{ path: 'l', symlink: 'a', crc: 0xdeadbeef }]), corrupt(/its CRC-32 does not match/));
});

test('unzipInto: following symlinks costs a bounded number of steps over the whole archive', async (t) => {
  // 600 links whose 3 KB targets go down a 100-deep tree and back up, six times over, stay inside; each
  // component was an lstat as deep as the tree, with no signal heard, for as long as the archive wished.
  const deep = 'd/'.repeat(100);
  const wander = `${(deep + '../'.repeat(100)).repeat(6)}f`;
  const entries: ZipEntry[] = [{ path: 'f', body: 'x' }, { path: deep }];
  for (let i = 0; i < 600; i++) entries.push({ path: `l${i}`, symlink: wander });
  const started = Date.now();
  await assert.rejects(unpack(t, entries), (err) => {
    assert.match(String(err), /refusing the archive: its symlinks take more than 16 million directory lookups to follow/);
    return true;
  });
  assert.ok(Date.now() - started < 60_000);
  // A few such links are fine; one leading deeper than 256 directories is judged not inside, and skipped.
  const staging = await unpack(t, [{ path: 'f', body: 'x' }, { path: deep }, { path: 'ok', symlink: wander }, { path: 'deep', symlink: `${'d/'.repeat(300)}f` }]);
  assert.equal(readlinkSync(path.join(staging, 'ok')), wander);
  assert.throws(() => lstatSync(path.join(staging, 'deep')), /ENOENT/);
});

test('unzipInto: the event loop gets a turn every 64 MiB, not only every 256 entries', async (t) => {
  // 256 overlapping 8 MiB records held it 7.9 s: a SIGTERM waited as long.
  let turns = 0;
  const timer = setInterval(() => turns++, 0);
  t.after(() => clearInterval(timer));
  const entries: ZipEntry[] = [{ path: 'z0', body: Buffer.alloc(8 << 20) }];
  for (let i = 1; i < 24; i++) entries.push({ path: `z${i}`, body: Buffer.alloc(8 << 20), sharesDataOf: 0 });
  const dir = tempDir(t);
  const file = path.join(dir, 'a.zip');
  writeFileSync(file, zip(entries));
  mkdirSync(path.join(dir, 's'));
  const before = turns;
  await unzipInto(file, path.join(dir, 's'), LIMITS, capture(false).log);
  assert.ok(turns - before >= 2, `the interval ran ${turns - before} times`);
});

test('unzipInto: a name no filesystem could hold is a damaged archive, not an error of this host', async (t) => {
  await assert.rejects(unpack(t, [{ path: 'a\0b', body: 'x' }]), corrupt(/cannot unpack "a\\u0000b": a NUL byte in its name/));
  const long = 'n'.repeat(300);
  await assert.rejects(unpack(t, [{ path: `dir/${long}/f`, body: 'x' }]), corrupt(/a name longer than 255 bytes in its path/));
  // 255 bytes is fine, in any script: 85 three-byte characters.
  const staging = await unpack(t, [
    { path: `${'n'.repeat(255)}`, body: 'x' },
    { path: 'あ'.repeat(85), body: 'y' },
  ]);
  assert.equal(readFileSync(path.join(staging, 'あ'.repeat(85)), 'utf8'), 'y');
});

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

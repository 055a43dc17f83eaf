import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Header } from 'tar/header';
import { decodeHeader, type DecodedHeader } from '../../../src/unpack/tar/header.js';

/**
 * decodeHeader's own path must read every block exactly as node-tar's Header does (or hand it to Header):
 * random blocks, fields made of the pieces real and broken archives contain, with a right or wrong checksum.
 */

const RUNS = Number(process.env.FUZZ_RUNS ?? 300) * 10;

const octalDigits = fc.array(fc.constantFrom(...'01234567'), { minLength: 1, maxLength: 12 }).map((d) => d.join(''));
const fieldPiece = fc.oneof(
  octalDigits,
  fc.constantFrom('\0', ' ', '  ', '\n', '\t', '/', '-', '+', '8', '9', 'ustar', 'ustar\u000000', 'ustar  \0', 'é', '日', '\u00a0', '.', '..', 'a/b', '\x80', '\xff'),
  fc.string({ maxLength: 6 }),
);
const fieldText = fc.array(fieldPiece, { maxLength: 5 }).map((p) => p.join(''));
/** Mostly what tar writes (zero-padded octal, NUL or space after), sometimes anything. */
const numberField = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(fc.integer({ min: 0, max: 0o7777777 }), fc.constantFrom('\0', ' ', ' \0', '')).map(([n, end]) => n.toString(8).padStart(7, '0') + end) },
  { weight: 1, arbitrary: fieldText },
);
const nameField = fc.oneof(
  { weight: 4, arbitrary: fc.array(fc.constantFrom('a', 'b/', 'é', '日', '.', '-', '/'), { minLength: 1, maxLength: 30 }).map((p) => p.join('')) },
  { weight: 1, arbitrary: fieldText },
);

/** A block: each field written from pieces (or left zero), then maybe a valid checksum. */
const blockArb = fc
  .record({
    name: nameField,
    mode: numberField,
    uid: numberField,
    gid: numberField,
    size: numberField,
    mtime: numberField,
    flag: fc.oneof(fc.constantFrom(0, 0x30, 0x31, 0x32, 0x35, 0x78, 0x67, 0x4c, 0x53, 0x0a), fc.integer({ min: 0, max: 255 })),
    linkname: nameField,
    magic: fc.constantFrom('ustar\u000000', 'ustar  \0', '', 'ustar\u0000', 'junk'),
    prefix: nameField,
    tail: fc.oneof(fc.constant(''), fieldText),
    times: numberField,
    dev: fc.oneof(fc.constant(''), numberField, fieldText),
    fixChecksum: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    checksumStyle: fc.constantFrom('0%s\0 ', '%s\0 ', ' %s ', '%s', '\t%s'),
    zero: fc.boolean(),
  })
  .map((f) => {
    const b = Buffer.alloc(512);
    if (f.zero) return b;
    // Bytes as written: names in UTF-8, the rest byte for byte (so '\x80' is a base-256 marker).
    const put = (text: string, at: number, size: number, encoding: BufferEncoding = 'latin1'): void => void b.write(text, at, size, encoding);
    put(f.name, 0, 100, 'utf8');
    put(f.mode, 100, 8);
    put(f.uid, 108, 8);
    put(f.gid, 116, 8);
    put(f.size, 124, 12);
    put(f.mtime, 136, 12);
    b[156] = f.flag;
    put(f.linkname, 157, 100, 'utf8');
    put(f.magic, 257, 8);
    put(f.dev, 329, 16);
    put(f.prefix, 345, 130, 'utf8');
    put(f.tail, 475, 1);
    put(f.times, 476, 24);
    if (f.fixChecksum) {
      b.fill(0x20, 148, 156);
      let sum = 0;
      for (const x of b) sum += x;
      put(f.checksumStyle.replace('%s', sum.toString(8)), 148, 8);
    }
    return b;
  });

function fields(h: DecodedHeader): Record<string, unknown> {
  // An end-of-archive block: nothing else of it is read.
  if (h.nullBlock) return { nullBlock: true, cksumValid: h.cksumValid };
  return {
    nullBlock: h.nullBlock,
    cksumValid: h.cksumValid,
    type: h.type,
    path: h.path,
    linkpath: h.linkpath,
    size: h.size,
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    mtime: h.mtime?.getTime(),
    atime: h.atime?.getTime(),
  };
}

test('decodeHeader reads random blocks exactly as node-tar does', () => {
  fc.assert(
    fc.property(blockArb, (block) => {
      const outcome = (decode: () => DecodedHeader): unknown => {
        try {
          return fields(decode());
        } catch (err) {
          return `throws: ${(err as Error).message}`;
        }
      };
      assert.deepEqual(
        outcome(() => decodeHeader(block, 0, undefined, undefined)),
        outcome(() => new Header(block, 0)),
      );
    }),
    { numRuns: RUNS },
  );
});

test('decodeHeader decodes ordinary blocks itself, not through node-tar', () => {
  const b = Buffer.alloc(512);
  b.write('dir/file.txt', 0);
  b.write('0000644\0', 100);
  b.write('0001750\0', 108);
  b.write('0001750\0', 116);
  b.write('00000000012\0', 124);
  b.write('14723232165\0', 136);
  b[156] = 0x30;
  b.write('ustar\u000000', 257, 'latin1');
  b.write('top', 345);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  const h = decodeHeader(b, 0, undefined, undefined);
  assert.ok(!(h instanceof Header), 'the fast path took it');
  assert.deepEqual(fields(h), fields(new Header(b, 0)));
  assert.equal(h.path, 'top/dir/file.txt');
  // A pending pax header: node-tar applies it.
  assert.ok(decodeHeader(b, 0, { path: 'from/pax' }, undefined) instanceof Header);
});

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { Parser, type ReadEntry } from 'tar';
import { code, normalFsTypes } from 'tar/types';
import { TarStream, type TarHeader } from '../../../src/unpack/tar/stream.js';

/**
 * TarStream (src/tar-stream.ts) replaced node-tar's Parser for speed, so node-tar is the reference: on
 * archives in every header variant, cut into chunks anywhere, both must see the same entries, and TarStream
 * must call an archive corrupt whenever node-tar warns about it.
 */

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

type Encoding = 'ustar' | 'pax' | 'gnu';

interface Spec {
  type: '0' | '5' | '2' | '1' | 'S';
  path: string;
  linkpath: string;
  body: Buffer;
  mode: number;
  uid: number;
  mtime: number;
  encoding: Encoding;
  /** A global pax header before this entry (keys a local header never sets, where the two parsers differ). */
  globalComment: string | undefined;
}

/** What both parsers report of an entry: its header, times as numbers, and a digest of its data. */
type Seen = Omit<TarHeader, 'mtime' | 'atime'> & { mtime: number | undefined; body?: string };

function numeric(n: number, width: number): Buffer {
  const field = Buffer.alloc(width);
  const octal = n.toString(8);
  if (octal.length < width) {
    field.write(octal.padStart(width - 1, '0') + '\0', 'latin1');
    return field;
  }
  // GNU base-256: the high bit of the first byte set, then the number big-endian.
  field[0] = 0x80;
  let rest = BigInt(n);
  for (let i = width - 1; i > 0; i--) {
    field[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return field;
}

function block(fields: { name: string; mode: number; uid: number; size: number; mtime: number; type: string; linkname: string; gnu: boolean; prefix?: string }): Buffer {
  const h = Buffer.alloc(512);
  h.write(fields.name, 0, 100, 'utf8');
  numeric(fields.mode, 8).copy(h, 100);
  numeric(fields.uid, 8).copy(h, 108);
  numeric(0, 8).copy(h, 116);
  numeric(fields.size, 12).copy(h, 124);
  numeric(fields.mtime, 12).copy(h, 136);
  h.write(fields.type, 156, 'latin1');
  h.write(fields.linkname, 157, 100, 'utf8');
  h.write(fields.gnu ? 'ustar  \0' : 'ustar\u000000', 257, 'latin1');
  if (fields.prefix) h.write(fields.prefix, 345, 155, 'utf8');
  h.write('        ', 148, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

function padded(body: Buffer): Buffer[] {
  return [body, Buffer.alloc((512 - (body.length % 512)) % 512)];
}

function paxRecords(pairs: [string, string][]): Buffer {
  let text = '';
  for (const [key, value] of pairs) {
    const rest = ` ${key}=${value}\n`;
    let len = Buffer.byteLength(rest) + 1;
    while (String(len).length + Buffer.byteLength(rest) !== len) len++;
    text += len + rest;
  }
  return Buffer.from(text);
}

function meta(type: string, body: Buffer, gnu: boolean): Buffer[] {
  return [block({ name: type === 'x' || type === 'g' ? 'PaxHeader' : '././@LongLink', mode: 0o644, uid: 0, size: body.length, mtime: 0, type, linkname: '', gnu }), ...padded(body)];
}

function archive(specs: Spec[]): Buffer {
  const out: Buffer[] = [];
  for (const s of specs) {
    if (s.globalComment !== undefined) out.push(...meta('g', paxRecords([['comment', s.globalComment]]), false));
    const body = s.type === '0' || s.type === 'S' ? s.body : Buffer.alloc(0);
    const isLink = s.type === '1' || s.type === '2';
    const linkname = isLink ? s.linkpath : '';
    let name = s.path;
    let prefix: string | undefined;
    if (s.encoding === 'pax') {
      const pairs: [string, string][] = [
        ['path', s.path],
        ['mtime', String(s.mtime)],
      ];
      if (isLink) pairs.push(['linkpath', linkname]);
      out.push(...meta('x', paxRecords(pairs), false));
      name = Buffer.from(s.path).subarray(0, 100).toString('latin1');
    } else if (s.encoding === 'gnu') {
      if (Buffer.byteLength(s.path) > 100) out.push(...meta('L', Buffer.from(s.path + '\0'), true));
      if (Buffer.byteLength(linkname) > 100) out.push(...meta('K', Buffer.from(linkname + '\0'), true));
    } else if (Buffer.byteLength(s.path) > 100) {
      const cut = s.path.lastIndexOf('/', 155);
      prefix = s.path.slice(0, cut);
      name = s.path.slice(cut + 1);
    }
    out.push(block({ name, mode: s.mode, uid: s.uid, size: body.length, mtime: s.mtime, type: s.type, linkname, gnu: s.encoding === 'gnu', ...(prefix ? { prefix } : {}) }));
    out.push(...padded(body));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

const CHARS = [...'abcxyzABC0189._-é日'];
/** Exact lengths drawn evenly: fast-check's own sizes stay short, and long paths are what the variants are for. */
function sized<T>(min: number, max: number, item: fc.Arbitrary<T>): fc.Arbitrary<T[]> {
  return fc.integer({ min, max }).chain((n) => fc.array(item, { minLength: n, maxLength: n }));
}
const segment = sized(1, 60, fc.constantFrom(...CHARS))
  .map((chars) => chars.join(''))
  .filter((s) => s !== '.' && s !== '..');
const pathArb = sized(1, 8, segment).map((parts) => parts.join('/'));

const specArb: fc.Arbitrary<Spec> = fc
  .record({
    type: fc.constantFrom<Spec['type']>('0', '0', '0', '5', '2', '1', 'S'),
    path: pathArb,
    linkpath: pathArb,
    body: fc
      .oneof(fc.constant(0), fc.constant(512), fc.integer({ min: 0, max: 3000 }))
      .chain((n) => fc.uint8Array({ minLength: n, maxLength: n }))
      .map((a) => Buffer.from(a)),
    mode: fc.integer({ min: 0, max: 0o7777 }),
    uid: fc.oneof(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0o7777777 + 1, max: 2 ** 31 })),
    mtime: fc.integer({ min: 0, max: 2 ** 33 }),
    encoding: fc.constantFrom<Encoding>('ustar', 'pax', 'gnu'),
    globalComment: fc.option(
      fc.string({ maxLength: 20 }).map((s) => s.replace(/\n/g, ' ')),
      { nil: undefined },
    ),
  })
  // A ustar path must fit its 100-byte name and 155-byte prefix; the others can be any length.
  .filter((s) => s.encoding !== 'ustar' || (Buffer.byteLength(s.path) <= 100 && Buffer.byteLength(s.linkpath) <= 100) || fitsUstar(s.path));

function fitsUstar(p: string): boolean {
  const cut = p.lastIndexOf('/', 155);
  return cut > 0 && Buffer.byteLength(p.slice(0, cut)) <= 155 && Buffer.byteLength(p.slice(cut + 1)) <= 100;
}

function digest(pieces: Buffer[]): string {
  return createHash('sha256').update(Buffer.concat(pieces)).digest('hex').slice(0, 16);
}

function seen(h: {
  type: string;
  path: string;
  linkpath?: string | undefined;
  size?: number | undefined;
  mode?: number | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
  mtime?: Date | undefined;
}): Seen {
  // Pax records override the header fields of file system entries only. For other entries (a sparse file,
  // a tape volume), node-tar's entry shows the pax values while both parsers pass over the block's own
  // size. Such entries are skipped and only their type and path are used (in the warning, or the error for a
  // sparse file), so only those are compared, with the link target, which both take from the pax record.
  if (!normalFsTypes.has(code.get(h.type as never) ?? '')) {
    return { type: h.type, path: h.path, linkpath: h.linkpath || undefined, size: 0, mode: undefined, uid: undefined, gid: undefined, mtime: undefined };
  }
  return { type: h.type, path: h.path, linkpath: h.linkpath || undefined, size: h.size ?? 0, mode: h.mode, uid: h.uid, gid: h.gid, mtime: h.mtime?.getTime() };
}

/** node-tar's view: the entries it reports before its first warning (after one, stretcher used to stop). */
async function reference(data: Buffer): Promise<{ entries: Seen[]; warned: boolean }> {
  const entries: Seen[] = [];
  let warned = false;
  const parser = new Parser({ strict: false, maxDecompressionRatio: Number.MAX_SAFE_INTEGER, onwarn: () => (warned = true) });
  const done = new Promise<void>((resolve) => parser.on('end', resolve));
  const record = (e: ReadEntry, body: boolean): void => {
    const item = seen(e);
    if (!warned) entries.push(item);
    const pieces: Buffer[] = [];
    if (body) e.on('data', (c: Buffer) => pieces.push(c));
    e.on('end', () => {
      if (body && e.size > 0) item.body = digest(pieces);
    });
    e.resume();
  };
  parser.on('entry', (e: ReadEntry) => record(e, e.type === 'File' || e.type === 'OldFile' || e.type === 'ContiguousFile'));
  parser.on('ignoredEntry', (e: ReadEntry) => record(e, false));
  parser.write(data);
  parser.end();
  await done;
  return { entries, warned };
}

function ours(data: Buffer, cuts: number[]): { entries: Seen[]; corrupt: string | undefined; ended: number } {
  const entries: Seen[] = [];
  let corrupt: string | undefined;
  let ended = 0;
  const stream = new TarStream({
    entry: (h: TarHeader) => {
      const item = seen(h);
      entries.push(item);
      if (h.type !== 'File' && h.type !== 'OldFile' && h.type !== 'ContiguousFile') return undefined;
      const pieces: Buffer[] = [];
      return {
        data: (piece) => pieces.push(Buffer.from(piece)),
        end: () => {
          ended++;
          if (h.size > 0) item.body = digest(pieces);
        },
      };
    },
    skipped: (h) => entries.push(seen(h)),
    corrupt: (message) => (corrupt ??= message),
  });
  let from = 0;
  for (const cut of [...cuts.filter((c) => c > 0 && c < data.length).sort((a, b) => a - b), data.length]) {
    stream.write(data.subarray(from, cut));
    from = cut;
  }
  stream.end();
  return { entries, corrupt, ended };
}

const cutsArb = fc.array(fc.integer({ min: 1, max: 400_000 }), { maxLength: 12 });

test('TarStream sees what node-tar sees, in every header variant, however the stream is cut into chunks', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(specArb, { minLength: 1, maxLength: 8 }), cutsArb, fc.array(fc.integer({ min: 1, max: 1024 }), { maxLength: 6 }), async (specs, cuts, small) => {
      const data = archive(specs);
      // Some cuts land close together: chunks of a few bytes, headers split many ways.
      const all = [...cuts.map((c) => c % data.length), ...small.map((s, i) => ((cuts[i] ?? 0) % data.length) + s)];
      const expected = await reference(data);
      assert.equal(expected.warned, false, 'the generated archive is valid');
      const got = ours(data, all);
      assert.equal(got.corrupt, undefined);
      assert.deepEqual(got.entries, expected.entries);
      assert.equal(got.ended, specs.filter((s) => s.type === '0').length, 'every file body is ended once');
    }),
    { numRuns: RUNS },
  );
});

test('TarStream calls an archive corrupt whenever node-tar warns, and agrees on the entries before', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(specArb, { minLength: 1, maxLength: 5 }),
      fc.oneof(fc.record({ truncate: fc.double({ min: 0, max: 1, noNaN: true }) }), fc.record({ flip: fc.double({ min: 0, max: 1, noNaN: true }), bits: fc.integer({ min: 1, max: 255 }) })),
      cutsArb,
      async (specs, damage, cuts) => {
        let data = archive(specs);
        if ('truncate' in damage) data = data.subarray(0, Math.floor(damage.truncate * data.length));
        else {
          data = Buffer.from(data);
          const at = Math.min(data.length - 1, Math.floor(damage.flip * data.length));
          data[at] = (data[at] as number) ^ damage.bits;
        }
        const expected = await reference(data);
        const got = ours(data, cuts);
        if (expected.warned) assert.ok(got.corrupt, `node-tar warned; TarStream: ${JSON.stringify(got.entries)}`);
        // Stricter than node-tar only where the archive stops inside a header or holds nothing.
        else if (got.corrupt) assert.match(got.corrupt, /ends inside a tar header|has no entries/);
        const headers = (list: Seen[]): Omit<Seen, 'body'>[] => list.map(({ body: _, ...h }) => h);
        assert.deepEqual(headers(got.entries), headers(expected.entries).slice(0, got.entries.length));
        if (!got.corrupt) assert.deepEqual(got.entries, expected.entries);
      },
    ),
    { numRuns: RUNS },
  );
});

function one(data: Buffer): { entries: Seen[]; corrupt: string | undefined } {
  const { entries, corrupt } = ours(data, []);
  return { entries, corrupt };
}

const file = (path: string, body = 'x'): Spec => ({ type: '0', path, linkpath: '', body: Buffer.from(body), mode: 0o644, uid: 0, mtime: 1_500_000_000, encoding: 'ustar', globalComment: undefined });

test('TarStream: an archive cut inside a header, or holding no entries, is corrupt', () => {
  const whole = archive([file('a'), file('b')]);
  // Cut 100 bytes into the second header: node-tar ignores the stub; GNU tar says "Unexpected EOF".
  const cut = one(whole.subarray(0, 1024 + 100));
  assert.match(cut.corrupt ?? '', /^it ends inside a tar header, at byte 1024$/);
  assert.deepEqual(
    one(whole.subarray(0, 1024 + 100)).entries.map((e) => e.path),
    ['a'],
  );
  // Cut inside a body, or inside its padding.
  assert.match(one(whole.subarray(0, 512 + 1)).corrupt ?? '', /^it ends inside "a": 511 more bytes were expected$/);
  // Zero bytes at the very end (the end-of-archive blocks cut short) are not a header.
  assert.equal(one(whole.subarray(0, whole.length - 700)).corrupt, undefined);
  assert.equal(one(Buffer.alloc(10240)).corrupt, 'it has no entries');
  // Two zero blocks end the archive: what follows is not read, as with GNU tar.
  const trailing = one(Buffer.concat([whole, archive([file('after-the-end')]), Buffer.from('junk')]));
  assert.deepEqual([trailing.corrupt, trailing.entries.map((e) => e.path)], [undefined, ['a', 'b']]);
});

test('TarStream: a local pax header wins over a global one, and long-name headers over 1 MiB are refused', () => {
  const local = paxRecords([
    ['path', 'local/name'],
    ['mtime', '1600000000'],
  ]);
  const global = paxRecords([
    ['path', 'global/ignored'],
    ['mtime', '1700000000'],
    ['uid', '4242'],
  ]);
  const data = Buffer.concat([...meta('g', global, false), ...meta('x', local, false), archive([file('short')])]);
  const { entries, corrupt } = one(data);
  assert.equal(corrupt, undefined);
  assert.deepEqual(
    entries.map((e) => [e.path, e.mtime, e.uid]),
    [['local/name', 1_600_000_000_000, 4242]],
  );
  const huge = Buffer.concat([...meta('L', Buffer.alloc((1 << 20) + 1, 0x61), true), archive([file('short')])]);
  assert.match(one(huge).corrupt ?? '', /^a NextFileHasLongPath header at byte 0 is 1048577 bytes long/);
});

test('TarStream: entries of other types are reported as skipped, and their data passed over', () => {
  const sparse: Spec = { ...file('holes.img', 'sparse map and data'.repeat(40)), type: 'S' };
  const skipped: string[] = [];
  const files: string[] = [];
  const stream = new TarStream({
    entry: (h) => void files.push(h.path),
    skipped: (h) => void skipped.push(`${h.type} ${h.path}`),
    corrupt: (message) => assert.fail(message),
  });
  // GNU tar's pax sparse form: a plain file under a made-up path, flagged only by GNU.sparse.* pax keys.
  const paxSparse = paxRecords([
    ['GNU.sparse.major', '1'],
    ['GNU.sparse.minor', '0'],
    ['GNU.sparse.name', 'real/disk.img'],
    ['GNU.sparse.realsize', '4194304'],
  ]);
  const paxFile = { ...file('GNUSparseFile.42/disk.img', 'map and data'.repeat(50)), encoding: 'ustar' as const };
  stream.write(Buffer.concat([archive([sparse, file('after')]).subarray(0, -1024), ...meta('x', paxSparse, false), archive([paxFile, file('last')])]));
  stream.end();
  assert.deepEqual(skipped, ['SparseFile holes.img', 'SparseFile real/disk.img']);
  assert.deepEqual(files, ['after', 'last']);
});

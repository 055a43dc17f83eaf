import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { inflateRawSync } from 'node:zlib';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { StretcherError } from '../shared/errors.js';
import type { Log } from '../shared/log.js';
import { Scavenger } from '../shared/scavenger.js';
import { crc32 } from './crc32.js';
import { checkLinkSize, checkLinkTarget, HostileArchiveError, LinkWalkBudget, StagingTree, staysInside, type UnpackLimits, type Unpacked } from './entry-rules.js';
import { closeQuietly, completeEntryFile, createEntryFile, EntryConflictError, type FileEntry, writeChunks } from './writer/file.js';

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
/**
 * A zip carries no owner, so a setuid or setgid bit in it would make a root-owned setuid file: the
 * special bits are dropped, as Info-ZIP's unzip drops them unless told -K.
 */
const PERMISSIONS = 0o777;
/** "Version made by" high byte for Unix: only then do external attributes hold a mode. */
const MADE_BY_UNIX = 3;
/**
 * An entry up to this size (compressed and not) is read, inflated and written by direct calls; a larger one
 * is streamed, so that memory stays bounded.
 */
const DIRECT_MAX = 8 << 20;
const TURN_BYTES = 64 << 20;
const CRC_MISMATCH = 'its CRC-32 does not match its data';
const STORED = 0;
const DEFLATED = 8;

/**
 * Unpacks a zip (repo-deploy's format) with the rules every format follows (entry-rules.ts): yauzl rejects
 * `..` and absolute names, sizes and counts are limited, Unix modes and mtimes are kept, and symlinks are
 * kept when their target stays inside the tree (others are skipped with a warning) and made after every
 * file.
 */
export async function unzipInto(file: string, staging: string, limits: UnpackLimits, log: Log): Promise<Unpacked> {
  const { zip, reader } = await openZip(file);
  const tree = new StagingTree(staging, limits);
  const links = new Map<string, { name: string; target: string; mtime: Date }>();
  const scavenger = new Scavenger();
  const unpackEntry = async (entry: Entry): Promise<void> => {
    tree.count(entry.uncompressedSize);
    const rel = tree.relative(entry.fileName);
    tree.replaces(rel);
    const unixMode = entry.versionMadeBy >> 8 === MADE_BY_UNIX ? entry.externalFileAttributes >>> 16 : 0;
    const type = unixMode & S_IFMT;
    const mtime = entry.getLastModDate();
    if (type === S_IFDIR || entry.fileName.endsWith('/')) {
      tree.directory({ rel, mtime, ...(unixMode & 0o777 ? { mode: unixMode & PERMISSIONS } : {}) });
      return;
    }
    if (type === S_IFLNK) {
      // Before reading it: a target's size is only what the entry declares, and 8 records sharing one
      // deflated 400 MiB made 5 GB of strings.
      checkLinkSize(entry.fileName, entry.uncompressedSize);
      const target = ((await directData(zip, reader, entry)) ?? (await readAll(await openEntry(zip, entry), entry.fileName, entry.crc32))).toString('utf8');
      checkLinkTarget(entry.fileName, target);
      links.set(rel, { name: entry.fileName, target, mtime });
      return;
    }
    tree.claimFile(rel);
    links.delete(rel);
    const file = { rel, abs: tree.abs(rel), mode: unixMode & PERMISSIONS || 0o644, mtime: mtime.getTime() / 1000 };
    const data = await directData(zip, reader, entry);
    if (data) writeWhole(data, file);
    else await writeFile(await openEntry(zip, entry), file, entry.fileName, entry.crc32);
    // The entry's buffers (read and inflated) are garbage now: see Scavenger.
    scavenger.discarded(entry.compressedSize + entry.uncompressedSize);
  };
  let done = 0;
  let unpackedSinceTurn = 0;
  try {
    tree.checkEntryCount(zip.entryCount);
    for (let entry = await nextEntry(zip); entry; entry = await nextEntry(zip)) {
      try {
        await unpackEntry(entry);
      } catch (err) {
        // This host's errors (a full disk under staging) name the entry, as the tar writer's do.
        throw err instanceof StretcherError ? err : new StretcherError('UNPACK_FAILED', `cannot unpack ${JSON.stringify(entry.fileName)}`, { cause: err });
      }
      // The event loop gets a turn now and then, for a signal: the direct calls above never wait for it.
      // Every 256 entries, or 64 MiB: 256 overlapping records of 8 MiB each held it 7.9 s.
      unpackedSinceTurn += entry.uncompressedSize;
      if (++done % 256 === 0 || unpackedSinceTurn >= TURN_BYTES) {
        unpackedSinceTurn = 0;
        await nextTurn();
      }
    }
  } finally {
    zip.close();
  }
  // Judged once every entry is known: a link's target may pass through the archive's other links.
  const targets = new Map([...links].map(([rel, l]) => [rel, l.target] as const));
  const budget = new LinkWalkBudget();
  for (const [rel, link] of links) {
    if (++done % 256 === 0) await nextTurn();
    if (!staysInside(staging, rel, link.target, targets, budget)) {
      log.warn(`skipping archive symlink ${JSON.stringify(link.name)} -> ${JSON.stringify(link.target)}: it points outside the tree`);
      continue;
    }
    tree.symlink({ rel, target: link.target, mtime: link.mtime });
  }
  await tree.complete(false);
  return tree.report(log, 'zip');
}

/**
 * A small entry's content, read from the spool and inflated by direct calls; undefined for one to stream
 * (openEntry). Checked as yauzl checks what it streams: the method, encryption, and that the data inflates
 * to exactly the size the central directory declares (and that the limits were counted with).
 */
async function directData(zip: ZipFile, reader: SpoolReader, entry: Entry): Promise<Buffer | undefined> {
  if (entry.compressedSize > DIRECT_MAX || entry.uncompressedSize > DIRECT_MAX || entry.isEncrypted()) return undefined;
  if (entry.compressionMethod !== STORED && entry.compressionMethod !== DEFLATED) return undefined;
  const { fileDataStart } = await localHeader(zip, entry);
  const raw = reader.bytes(fileDataStart, entry.compressedSize);
  if (raw.length !== entry.compressedSize) throw corrupt(entry.fileName, 'unexpected EOF');
  let data: Buffer = raw;
  if (entry.compressionMethod === DEFLATED) {
    try {
      // One byte more than declared is enough to tell "too many bytes" without inflating a bomb to its end.
      data = inflateRawSync(raw, { maxOutputLength: entry.uncompressedSize + 1 });
    } catch (err) {
      throw corrupt(entry.fileName, (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? 'too many bytes in the stream' : (err as Error).message);
    }
  }
  if (data.length > entry.uncompressedSize) throw corrupt(entry.fileName, 'too many bytes in the stream');
  if (data.length < entry.uncompressedSize) throw corrupt(entry.fileName, `not enough bytes in the stream. expected ${entry.uncompressedSize}. got only ${data.length}`);
  // What unzip checks too: a zip whose content is not what its directory says was damaged after it was made.
  if (crc32(data) !== entry.crc32) throw corrupt(entry.fileName, CRC_MISMATCH);
  return data;
}

function localHeader(zip: ZipFile, entry: Entry): Promise<{ fileDataStart: number }> {
  return new Promise((resolve, reject) => zip.readLocalFileHeader(entry, { minimal: true }, (err, header) => (err ? reject(corrupt(entry.fileName, err.message)) : resolve(header))));
}

/** A small file, written whole as tar entries are (writer/file.ts). */
function writeWhole(data: Buffer, entry: FileEntry): void {
  const fd = createFile(entry);
  try {
    writeChunks(fd, [data]);
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
  completeEntryFile(fd, entry);
}

/**
 * Writes one large file as tar entries are written (writer/file.ts), by direct calls on a descriptor only
 * this function closes: a WriteStream destroyed by a failing pipeline closes its descriptor too, later, and
 * a second close may hit whatever reused the number.
 */
async function writeFile(body: Readable, entry: FileEntry, name: string, expectedCrc: number): Promise<void> {
  let fd: number;
  try {
    fd = createFile(entry);
  } catch (err) {
    body.destroy();
    throw err;
  }
  try {
    for await (const chunk of checkedChunks(body, name, expectedCrc)) writeChunks(fd, [chunk]);
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
  completeEntryFile(fd, entry);
}

/**
 * Created with O_EXCL|O_NOFOLLOW (writer/file.ts), so a file or symlink an earlier layer left at the path
 * is replaced, never written through.
 */
function createFile(entry: FileEntry): number {
  try {
    return createEntryFile(entry);
  } catch (err) {
    if (err instanceof EntryConflictError) throw new HostileArchiveError(`refusing the archive: ${err.message}`);
    throw err;
  }
}

/**
 * A streamed entry's chunks, checked as directData checks a small one: what yauzl's streams report (a size
 * that lies, deflate data that is not, a short spool) and the CRC-32 at the end are ARCHIVE_CORRUPT. The
 * stream is destroyed if the caller stops early.
 */
async function* checkedChunks(body: Readable, name: string, expectedCrc: number): AsyncGenerator<Buffer> {
  let crc = 0;
  const chunks = body[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = (await chunks.next()) as IteratorResult<Buffer>;
      } catch (err) {
        throw corrupt(name, (err as Error).message);
      }
      if (next.done) break;
      crc = crc32(next.value, crc);
      yield next.value;
    }
  } finally {
    body.destroy();
  }
  if (crc !== expectedCrc) throw corrupt(name, CRC_MISMATCH);
}

function corrupt(name: string, why: string): StretcherError {
  return new StretcherError('ARCHIVE_CORRUPT', `cannot unpack ${name}: ${why}`);
}

/**
 * The spool file for yauzl, read by direct calls. yauzl's own file reader makes two asynchronous reads per
 * central directory entry and more per file, each a round trip through libuv's pool: 13 to 15 s for a zip
 * of the benchmark's 10,000 files, where the same tree as a tar.gz deploys in about 1 s.
 */
class SpoolReader extends yauzl.RandomAccessReader {
  constructor(private readonly fd: number) {
    super();
  }

  /** `length` bytes at `position`, fewer at the end of the file. */
  bytes(position: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = readSync(this.fd, buf, got, length - got, position + got);
      if (n === 0) break;
      got += n;
    }
    return got === length ? buf : buf.subarray(0, got);
  }

  override read(buffer: Buffer, offset: number, length: number, position: number, callback: (err: Error | null, bytesRead?: number) => void): void {
    let bytes: Buffer;
    try {
      bytes = this.bytes(position, length);
    } catch (err) {
      return callback(err as Error);
    }
    bytes.copy(buffer, offset);
    callback(null, bytes.length);
  }

  override _readStreamForRange(start: number, end: number): Readable {
    let at = start;
    const stream: Readable = new Readable({
      highWaterMark: STREAM_CHUNK,
      read: () => {
        try {
          const chunk = at < end ? this.bytes(at, Math.min(STREAM_CHUNK, end - at)) : undefined;
          at += chunk?.length ?? 0;
          stream.push(chunk?.length ? chunk : null);
        } catch (err) {
          stream.destroy(err as Error);
        }
      },
    });
    return stream;
  }

  override close(callback: (err: Error | null) => void): void {
    try {
      closeSync(this.fd);
    } catch (err) {
      return callback(err as Error);
    }
    callback(null);
  }
}

const STREAM_CHUNK = 1 << 20;

function openZip(file: string): Promise<{ zip: ZipFile; reader: SpoolReader }> {
  return new Promise((resolve, reject) => {
    const fail = (err?: Error | null): void => reject(new StretcherError('ARCHIVE_CORRUPT', `cannot unpack the zip archive: ${err?.message ?? 'unreadable'}`));
    let fd: number;
    let size: number;
    try {
      fd = openSync(file, 'r');
      size = fstatSync(fd).size;
    } catch (err) {
      return fail(err as Error);
    }
    const reader = new SpoolReader(fd);
    yauzl.fromRandomAccessReader(reader, size, { lazyEntries: true, autoClose: false, validateEntrySizes: true, decodeStrings: true }, (err, zip) => {
      if (err || !zip) {
        closeQuietly(fd);
        return fail(err);
      }
      resolve({ zip, reader });
    });
  });
}

/** The next entry, or undefined at the end. yauzl's own name checks (`..`, absolute paths) surface here. */
function nextEntry(zip: ZipFile): Promise<Entry | undefined> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
    };
    const onEntry = (entry: Entry): void => {
      cleanup();
      resolve(entry);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(undefined);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(
        /invalid relative path|absolute path/.test(err.message)
          ? new HostileArchiveError(`refusing the archive: ${err.message}`)
          : new StretcherError('ARCHIVE_CORRUPT', `cannot unpack the zip archive: ${err.message}`),
      );
    };
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

function openEntry(zip: ZipFile, entry: Entry): Promise<Readable> {
  return new Promise((resolve, reject) => zip.openReadStream(entry, (err, stream) => (err || !stream ? reject(corrupt(entry.fileName, err?.message ?? 'unreadable')) : resolve(stream))));
}

/** A symlink's target whose compressed size is too large to read whole (its own is at most 4095 bytes). */
async function readAll(stream: Readable, name: string, expectedCrc: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of checkedChunks(stream, name, expectedCrc)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

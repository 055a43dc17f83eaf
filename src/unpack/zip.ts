import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { StretcherError } from '../shared/errors.js';
import type { Log } from '../shared/log.js';
import { HostileArchiveError, StagingTree, staysInside, type UnpackLimits, type Unpacked } from './entry-rules.js';
import { closeQuietly, completeEntryFile, createEntryFile, EntryConflictError, type FileEntry } from './writer/file.js';

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
 * Unpacks a zip (repo-deploy's format) with the rules every format follows (entry-rules.ts): yauzl rejects
 * `..` and absolute names, sizes and counts are limited, Unix modes and mtimes are kept, and symlinks are
 * kept when their target stays inside the tree (others are skipped with a warning) and made after every
 * file.
 */
export async function unzipInto(file: string, staging: string, limits: UnpackLimits, log: Log): Promise<Unpacked> {
  const zip = await openZip(file);
  const tree = new StagingTree(staging, limits);
  const links = new Map<string, { name: string; target: string; mtime: Date }>();
  try {
    tree.checkEntryCount(zip.entryCount);
    for (let entry = await nextEntry(zip); entry; entry = await nextEntry(zip)) {
      tree.count(entry.uncompressedSize);
      const rel = tree.relative(entry.fileName);
      tree.replaces(rel);
      const unixMode = entry.versionMadeBy >> 8 === MADE_BY_UNIX ? entry.externalFileAttributes >>> 16 : 0;
      const type = unixMode & S_IFMT;
      const mtime = entry.getLastModDate();
      if (type === S_IFDIR || entry.fileName.endsWith('/')) {
        tree.directory({ rel, mtime, ...(unixMode & 0o777 ? { mode: unixMode & PERMISSIONS } : {}) });
        continue;
      }
      if (type === S_IFLNK) {
        links.set(rel, { name: entry.fileName, target: (await readAll(await openEntry(zip, entry))).toString('utf8'), mtime });
        continue;
      }
      tree.claimFile(rel);
      links.delete(rel);
      await writeFile(await openEntry(zip, entry), { rel, abs: tree.abs(rel), mode: unixMode & PERMISSIONS || 0o644, mtime: mtime.getTime() / 1000 });
    }
  } finally {
    zip.close();
  }
  // Judged once every entry is known: a link's target may pass through the archive's other links.
  const targets = new Map([...links].map(([rel, l]) => [rel, l.target] as const));
  for (const [rel, link] of links) {
    if (!staysInside(staging, rel, link.target, targets)) {
      log.warn(`skipping archive symlink ${JSON.stringify(link.name)} -> ${JSON.stringify(link.target)}: it points outside the tree`);
      continue;
    }
    tree.symlink({ rel, target: link.target, mtime: link.mtime });
  }
  await tree.complete(false);
  return tree.report(log, 'zip');
}

/**
 * Writes one file as tar entries are written (writer/file.ts): created with O_EXCL|O_NOFOLLOW, so a file
 * or symlink an earlier layer left at the path is replaced, never written through.
 */
async function writeFile(body: Readable, entry: FileEntry): Promise<void> {
  let fd: number;
  try {
    fd = createEntryFile(entry);
  } catch (err) {
    body.destroy();
    if (err instanceof EntryConflictError) throw new HostileArchiveError(`refusing the archive: ${err.message}`);
    throw err;
  }
  try {
    await pipeline(body, createWriteStream(entry.abs, { fd, autoClose: false }));
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
  completeEntryFile(fd, entry);
}

function openZip(file: string): Promise<ZipFile> {
  return new Promise((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: false, validateEntrySizes: true, decodeStrings: true }, (err, zip) =>
      err || !zip ? reject(new StretcherError('ARCHIVE_CORRUPT', `cannot unpack the zip archive: ${err?.message ?? 'unreadable'}`)) : resolve(zip),
    ),
  );
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
  return new Promise((resolve, reject) =>
    zip.openReadStream(entry, (err, stream) => (err || !stream ? reject(new StretcherError('ARCHIVE_CORRUPT', `cannot unpack ${entry.fileName}: ${err?.message ?? 'unreadable'}`)) : resolve(stream))),
  );
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

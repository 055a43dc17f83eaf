import { createWriteStream } from 'node:fs';
import { chmod, utimes } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yauzl, { type Entry, type ZipFile } from 'yauzl';
import { closeQuietly, completeEntryFile, createEntryFile, EntryConflictError, type FileEntry } from './writer/file.js';
import { createDeferredLink, ensureRealDir, HostileArchiveError, safeRelative, type DeferredLink } from './entry-rules.js';
import type { ExtractLimits, Extracted } from './unpacker.js';
import { formatBytes } from '../shared/units.js';
import { StretcherError } from '../shared/errors.js';
import type { Log } from '../shared/log.js';

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
/** "Version made by" high byte for Unix: only then do external attributes hold a mode. */
const MADE_BY_UNIX = 3;

/**
 * Unpacks a zip (repo-deploy's format) with tar's rules: no entry may leave the staging tree (yauzl rejects
 * `..` and absolute names), size and count limits, Unix modes and mtimes kept, symlinks kept when their
 * target stays inside the tree (others skipped with a warning) and created after every file.
 */
export async function unzipInto(file: string, staging: string, limits: ExtractLimits, log: Log): Promise<Extracted> {
  const zip = await openZip(file);
  if (zip.entryCount > limits.maxEntries) {
    zip.close();
    throw new StretcherError('ARCHIVE_LIMIT', `the archive has more than ${limits.maxEntries} entries (--max-extract-entries)`);
  }
  const links: DeferredLink[] = [];
  const dirs: { rel: string; mode?: number; mtime: Date }[] = [];
  /** Files this zip has written, so that a later directory at the same path is refused. */
  const files = new Set<string>();
  let entries = 0;
  let bytes = 0;
  try {
    for (let entry = await nextEntry(zip); entry; entry = await nextEntry(zip)) {
      entries++;
      bytes += entry.uncompressedSize;
      if (bytes > limits.maxBytes) throw new StretcherError('ARCHIVE_LIMIT', `the archive unpacks to more than ${formatBytes(limits.maxBytes)} (--max-extract-size)`);
      const rel = safeRelative(entry.fileName);
      if (rel === undefined) throw new HostileArchiveError(`refusing archive entry ${JSON.stringify(entry.fileName)}: its path leaves the staging directory`);
      const unixMode = entry.versionMadeBy >> 8 === MADE_BY_UNIX ? entry.externalFileAttributes >>> 16 : 0;
      const type = unixMode & S_IFMT;
      const mtime = entry.getLastModDate();
      if (type === S_IFDIR || entry.fileName.endsWith('/')) {
        if (files.has(rel)) throw new HostileArchiveError(`refusing the archive: archive entry ${JSON.stringify(rel)} is a directory where the archive has a file`);
        await ensureRealDir(staging, rel, true);
        dirs.push({ rel, mtime, ...(unixMode & 0o7777 ? { mode: unixMode & 0o7777 } : {}) });
        continue;
      }
      await ensureRealDir(staging, path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel));
      if (type === S_IFLNK) {
        const target = (await readAll(await openEntry(zip, entry))).toString('utf8');
        const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
        if (path.posix.isAbsolute(target) || resolved === '..' || resolved.startsWith('../')) {
          log.warn(`skipping archive symlink ${JSON.stringify(entry.fileName)} -> ${JSON.stringify(target)}: it points outside the tree`);
          continue;
        }
        links.push({ rel, target, mtime });
        continue;
      }
      files.add(rel);
      await writeFile(await openEntry(zip, entry), { rel, abs: path.join(staging, rel), mode: unixMode & 0o7777 || 0o644, mtime: mtime.getTime() / 1000 });
    }
  } finally {
    zip.close();
  }
  for (const link of links) await createDeferredLink(staging, link, false);
  for (const dir of dirs.reverse()) {
    const abs = path.join(staging, dir.rel);
    if (dir.mode !== undefined) await chmod(abs, dir.mode);
    await utimes(abs, dir.mtime, dir.mtime);
  }
  log.info(`unpacked ${entries} entries (${formatBytes(bytes)}, zip)`, { entries, bytes });
  return { format: 'zip', entries, bytes };
}

/**
 * Writes one file as tar entries are written (archive-writer.ts): created with O_EXCL|O_NOFOLLOW, so a file
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
    const onEntry = (entry: Entry): void => (cleanup(), resolve(entry));
    const onEnd = (): void => (cleanup(), resolve(undefined));
    const onError = (err: Error): void => {
      cleanup();
      reject(/invalid relative path|absolute path/.test(err.message) ? new HostileArchiveError(`refusing the archive: ${err.message}`) : new StretcherError('ARCHIVE_CORRUPT', `cannot unpack the zip archive: ${err.message}`));
    };
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

function openEntry(zip: ZipFile, entry: Entry): Promise<Readable> {
  return new Promise((resolve, reject) =>
    zip.openReadStream(entry, (err, stream) => (err || !stream ? reject(new StretcherError('UNPACK_FAILED', `cannot unpack ${entry.fileName}: ${err?.message ?? 'unreadable'}`)) : resolve(stream))),
  );
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

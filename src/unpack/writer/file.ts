import { closeSync, constants, fchmodSync, fchownSync, futimesSync, lstatSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';

/**
 * The syscalls that write one regular file of an archive. Shared by the main thread and the writer threads
 * (worker.ts), so it imports nothing but node:fs: every module it loads is loaded again per thread.
 */
export interface FileEntry {
  /** Path relative to the staging root, for messages. */
  rel: string;
  abs: string;
  mode: number;
  /** Seconds since the epoch, as futimes takes them. */
  mtime?: number;
  atime?: number;
  /**
   * Set only when running as root and the archive's owner is not the one a new file gets anyway: owners
   * are kept then, as GNU tar and node-tar do.
   */
  owner?: { uid: number; gid: number };
  /**
   * The mode to create the file with, when creating gives the exact mode: the umask clears none of its
   * bits, and it has no setuid, setgid or sticky bit (chown clears those). Saves an fchmod per file.
   */
  createMode?: number;
  /**
   * Set when dest's file at the same path may stand in for this one, if it has these very bytes
   * (counterpart.ts): the archive's size, the owner the staged file would get, and whether staging may
   * already hold a file at this path (an earlier entry's or layer's) that dest's must then replace.
   */
  compare?: { size: number; uid: number; gid: number; replacing: boolean };
}

export class EntryConflictError extends Error {
  override name = 'EntryConflictError';
}

// O_EXCL with O_NOFOLLOW: never opens what is already there, so nothing is written through a symlink (one an
// earlier layer left, say). The staging directory is private (mkdtemp's 0700), so a file may have its real
// mode from the start; one with special bits is created private and given them only once owned and complete.
const CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** Opens a new file at entry.abs; an existing file or symlink there is replaced, a directory is an error. */
export function createEntryFile(entry: FileEntry): number {
  try {
    return openSync(entry.abs, CREATE, entry.createMode ?? 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (lstatSync(entry.abs).isDirectory()) {
    throw new EntryConflictError(`archive entry ${JSON.stringify(entry.rel)} is a file where a directory already is`);
  }
  // A later entry, or a later layer, with the same path replaces the earlier one, as in GNU tar.
  unlinkSync(entry.abs);
  return openSync(entry.abs, CREATE, entry.createMode ?? 0o600);
}

export function writeChunks(fd: number, chunks: readonly Uint8Array[]): void {
  for (const chunk of chunks) {
    let offset = 0;
    while (offset < chunk.length) offset += writeSync(fd, chunk, offset);
  }
}

/** Copies the first `length` bytes of `from` into `to` through `buf`; how many there were (fewer at its end). */
export function copyStart(from: number, to: number, length: number, buf: Buffer): number {
  let pos = 0;
  while (pos < length) {
    const got = readSync(from, buf, 0, Math.min(buf.length, length - pos), pos);
    if (got === 0) break;
    writeChunks(to, [buf.subarray(0, got)]);
    pos += got;
  }
  return pos;
}

/**
 * A time in seconds as node's utimes family must be given it: node replaces a negative number with now
 * (a file from before 1970, as GNU tar keeps it, came out dated today); a Date is taken as it is.
 */
export function timeArg(seconds: number): number | Date {
  return seconds >= 0 ? seconds : new Date(seconds * 1000);
}

/** Owner, then mode (chown clears setuid bits), then times; closes fd whatever happens. */
export function completeEntryFile(fd: number, entry: FileEntry): void {
  try {
    if (entry.owner) fchownSync(fd, entry.owner.uid, entry.owner.gid);
    if (entry.createMode === undefined) fchmodSync(fd, entry.mode & 0o7777);
    if (entry.mtime !== undefined) futimesSync(fd, timeArg(entry.atime ?? entry.mtime), timeArg(entry.mtime));
  } finally {
    closeSync(fd);
  }
}

/** Closes fd on a path that is failing already: the error that matters is reported elsewhere. */
export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

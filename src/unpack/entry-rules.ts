import { chmodSync, lchownSync, lstatSync, lutimesSync, mkdirSync, readlinkSync, symlinkSync, unlinkSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { StretcherError } from '../shared/errors.js';
import type { Log } from '../shared/log.js';
import { lstatQuiet, parentOf } from '../shared/tree-path.js';
import { formatBytes } from '../shared/units.js';

/**
 * The rules every archive format follows, in one place (tar/unpacker.ts and zip.ts apply them): where an
 * entry may go, how many there may be, what may replace what, and how links and directory attributes are
 * made last so that nothing in an archive is ever written through a link or into a read-only directory.
 */

export interface UnpackLimits {
  maxBytes: number;
  maxEntries: number;
  /** The flags that set them, as the operator spelled them (an old --max-extract-* name is an alias). */
  flags?: { bytes: string; entries: string };
}

/** What unpacking produced, for the summary line. */
export interface Unpacked {
  format: string;
  entries: number;
  bytes: number;
}

/** The archive tries to reach outside the tree, or to make one entry go through another. */
export class HostileArchiveError extends StretcherError {
  override name = 'HostileArchiveError';
  constructor(message: string) {
    super('ARCHIVE_HOSTILE', message);
  }
}

export interface DeferredLink {
  rel: string;
  target: string;
  mtime?: Date;
  uid?: number;
  gid?: number;
}

/** A directory whose attributes are set once everything inside it is written. */
export interface DeferredDir {
  rel: string;
  mode?: number;
  mtime?: Date;
  owner?: { uid: number; gid: number };
}

/** A path that is not already relative and normal: a leading or trailing /, //, or a . or .. component. */
const NOT_PLAIN = /^\/|\/$|\/\/|(^|\/)\.\.?(\/|$)/;

/** The entry's path relative to the staging root ("" for the root itself), or undefined if it would leave it. */
export function safeRelative(entryPath: string): string | undefined {
  // Most entries are already in that form: checked in one pass, they need no splitting (10,000 entries).
  if (entryPath !== '' && !NOT_PLAIN.test(entryPath)) return entryPath;
  const parts: string[] = [];
  for (const part of entryPath.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return undefined;
    parts.push(part);
  }
  return parts.join('/');
}

export { parentOf };

/** The longest name of one file or directory on Linux filesystems (NAME_MAX). */
const NAME_MAX = 255;

/**
 * A name no filesystem could hold (a NUL byte, a component longer than NAME_MAX) is a damaged archive,
 * said when the entry is read: not the system's ENAMETOOLONG or a TypeError when it is written.
 */
function checkName(rel: string): void {
  const why = rel.includes('\0')
    ? 'a NUL byte in its name'
    : // A UTF-16 code unit is at most 3 bytes of UTF-8: only a long path can hold a component too long.
      rel.length * 3 > NAME_MAX && rel.split('/').some((part) => Buffer.byteLength(part) > NAME_MAX)
      ? `a name longer than ${NAME_MAX} bytes in its path`
      : undefined;
  if (why) throw new StretcherError('ARCHIVE_CORRUPT', `cannot unpack ${JSON.stringify(rel)}: ${why}`);
}

/**
 * The tree an archive is unpacked into (staging, private to this deploy), and what this archive has put
 * there so far: the entries and bytes counted against the limits, the directories made real, the files
 * written, and the symlinks and directory attributes still to apply.
 */
export class StagingTree {
  entries = 0;
  bytes = 0;
  /** Directories known to be real directories in staging (created or checked here). */
  private readonly realDirs = new Set<string>(['']);
  /** Files this archive has written, so that a later directory at the same path is refused, not raced. */
  private readonly files = new Set<string>();
  private readonly symlinks = new Map<string, DeferredLink>();
  /** By path: a later entry for a directory gives it its attributes, as in GNU tar, in the first one's place. */
  private readonly dirs = new Map<string, DeferredDir>();
  /** root and a slash: rel is already normal (safeRelative), so this is path.join without its cost. */
  private readonly prefix: string;

  constructor(
    readonly root: string,
    private readonly limits: UnpackLimits,
  ) {
    this.prefix = path.join(root, '/');
  }

  abs(rel: string): string {
    return this.prefix + rel;
  }

  /** Refuses an archive that announces more entries than allowed, before reading any. */
  checkEntryCount(count: number): void {
    if (count > this.limits.maxEntries) throw this.tooManyEntries();
  }

  /** Counts one entry of `size` bytes; throws once the archive is past either limit (decompression bombs). */
  count(size: number): void {
    this.entries++;
    this.bytes += size;
    if (this.entries > this.limits.maxEntries) throw this.tooManyEntries();
    if (this.bytes > this.limits.maxBytes)
      throw new StretcherError('ARCHIVE_LIMIT', `the archive unpacks to more than ${formatBytes(this.limits.maxBytes)} (${this.limits.flags?.bytes ?? '--max-unpack-size'})`);
  }

  private tooManyEntries(): StretcherError {
    return new StretcherError('ARCHIVE_LIMIT', `the archive has more than ${this.limits.maxEntries} entries (${this.limits.flags?.entries ?? '--max-unpack-entries'})`);
  }

  /** The entry's path inside the tree; an entry that would leave it fails the deploy. */
  relative(entryPath: string): string {
    const rel = safeRelative(entryPath);
    if (rel === undefined) throw new HostileArchiveError(`refusing archive entry ${JSON.stringify(entryPath)}: its path leaves the staging directory`);
    checkName(rel);
    return rel;
  }

  /** A later entry with the same path replaces an earlier one, as in GNU tar: its deferred link goes. */
  replaces(rel: string): void {
    this.symlinks.delete(rel);
  }

  /**
   * mkdir -p for rel that refuses to pass through a symlink or a file. `replace`: rel itself is an
   * archive's directory entry, which replaces a file or symlink an earlier layer left at that path (its
   * parents must still be real directories).
   */
  realDir(rel: string, replace: boolean): void {
    if (this.realDirs.has(rel)) return;
    this.realDir(parentOf(rel), false);
    if (this.files.has(rel)) throw new HostileArchiveError(`refusing the archive: archive entry ${JSON.stringify(rel)} is a directory where the archive has a file`);
    const abs = this.abs(rel);
    const st = lstatOrUndefined(abs);
    if (st && !st.isDirectory()) {
      // Only an earlier layer can have left a symlink or file here: this archive's links are made last.
      if (!replace) throw new HostileArchiveError(`refusing the archive: ${JSON.stringify(rel)} passes through ${st.isSymbolicLink() ? 'a symlink' : 'a non-directory'}`);
      unlinkSync(abs);
    }
    if (!st?.isDirectory()) mkdirSync(abs, { mode: 0o755 });
    this.realDirs.add(rel);
  }

  /**
   * A regular file (or hard link) goes at rel: its parents are made real, and no directory may be there.
   * Whether this archive already had a file at rel.
   */
  claimFile(rel: string, what = 'a file'): boolean {
    if (rel === '') throw new HostileArchiveError(`refusing the archive: archive entry for the staging root is ${what}`);
    this.realDir(parentOf(rel), false);
    if (this.realDirs.has(rel)) throw new HostileArchiveError(`refusing the archive: archive entry ${JSON.stringify(rel)} is ${what} where a directory already is`);
    const again = this.files.has(rel);
    this.files.add(rel);
    return again;
  }

  directory(dir: DeferredDir): void {
    this.realDir(dir.rel, true);
    this.dirs.set(dir.rel, dir);
  }

  symlink(link: DeferredLink): void {
    if (link.rel === '') throw new HostileArchiveError('refusing a symlink as the archive root');
    checkLinkTarget(link.rel, link.target);
    this.symlinks.set(link.rel, link);
  }

  /**
   * The last step: symlinks, then directory owners, modes and times, deepest first, so that a read-only
   * directory does not stop what is inside it being fixed.
   *
   * Direct calls, as the merge makes them (sync/merge.ts): three per directory, and through libuv's pool
   * each waited its turn behind inflating; the event loop gets a turn every 256 entries, so that a signal
   * still stops a large tree's completion promptly.
   */
  async complete(keepOwners: boolean): Promise<void> {
    let done = 0;
    const breathe = async (): Promise<void> => {
      if (++done % 256 === 0) await nextTurn();
    };
    for (const link of this.symlinks.values()) {
      this.makeSymlink(link, keepOwners);
      await breathe();
    }
    for (const dir of [...this.dirs.values()].reverse()) {
      const abs = this.abs(dir.rel);
      if (dir.owner && keepOwners) lchownSync(abs, dir.owner.uid, dir.owner.gid);
      if (dir.mode !== undefined) chmodSync(abs, dir.mode & 0o7777);
      if (dir.mtime) utimesSync(abs, dir.mtime, dir.mtime);
      await breathe();
    }
  }

  private makeSymlink(link: DeferredLink, keepOwners: boolean): void {
    this.realDir(parentOf(link.rel), false);
    const abs = this.abs(link.rel);
    try {
      symlinkSync(link.target, abs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new HostileArchiveError(`refusing the archive: symlink ${JSON.stringify(link.rel)} collides with an entry the archive puts inside or at that path`);
      }
      throw err;
    }
    if (keepOwners && link.uid !== undefined && link.gid !== undefined) lchownSync(abs, link.uid, link.gid);
    if (link.mtime) lutimesSync(abs, link.mtime, link.mtime);
  }

  /** The summary line, once unpacking succeeded. */
  report(log: Log, format: string): Unpacked {
    log.info(`unpacked ${this.entries} entries (${formatBytes(this.bytes)}, ${format})`, { entries: this.entries, bytes: this.bytes });
    return { format, entries: this.entries, bytes: this.bytes };
  }
}

/**
 * What, if anything, reaching rel from the staging root passes through that is not a real directory (a
 * symlink an earlier layer left, say): lstat checks only the last component, and link() follows the others.
 * Checks without creating anything, unlike realDir.
 */
export function obstacleOnPath(root: string, rel: string): 'a symlink' | 'a non-directory' | undefined {
  let current = root;
  for (const part of rel.split('/').slice(0, -1)) {
    current = path.join(current, part);
    const st = lstatQuiet(current);
    if (!st) return undefined;
    if (!st.isDirectory()) return st.isSymbolicLink() ? 'a symlink' : 'a non-directory';
  }
  return undefined;
}

function lstatOrUndefined(abs: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The longest symlink target Linux stores: PATH_MAX less its NUL. */
export const MAX_LINK_TARGET = 4095;

/**
 * A target no filesystem could hold (empty, a NUL byte, longer than PATH_MAX) is a damaged archive: said
 * so when the entry is read, not as symlink(2)'s ENOENT or ENAMETOOLONG at the end.
 */
export function checkLinkTarget(rel: string, target: string): void {
  if (target === '' || target.includes('\0')) {
    throw new StretcherError('ARCHIVE_CORRUPT', `cannot unpack ${JSON.stringify(rel)}: a symlink with ${target ? 'a NUL byte in its target' : 'an empty target'}`);
  }
  checkLinkSize(rel, Buffer.byteLength(target));
}

/** checkLinkTarget's length rule, for a format that declares the size before the target is read. */
export function checkLinkSize(rel: string, bytes: number): void {
  if (bytes > MAX_LINK_TARGET) {
    throw new StretcherError('ARCHIVE_CORRUPT', `cannot unpack ${JSON.stringify(rel)}: a symlink with a target of ${bytes} bytes (the longest a symlink holds is ${MAX_LINK_TARGET})`);
  }
}

/**
 * What following an archive's symlinks may cost, over all of them, in directory levels looked through: a
 * component at depth d costs d + 1 (its lstat walks d directories, its path is d long). An ordinary tree's
 * links cost a few dozen each; a zip of 10,000 links whose 4 KiB targets wander up and down a deep tree
 * would have held the event loop for hours. The budget is about a second of lookups.
 */
export class LinkWalkBudget {
  constructor(public levels = LINK_WALK_LEVELS) {}
}

const LINK_WALK_LEVELS = 16_000_000;

/** Deeper than this while following a link is judged not inside, as a loop is. */
const MAX_WALK_DEPTH = 256;

/**
 * Whether a symlink at `rel` to `target` resolves inside the tree, following, as the kernel would, every
 * link on the way: the archive's own (`links`) and those an earlier layer left. Normalising the text alone
 * is not enough: `a/c -> b/..` with `a/b -> ..` leaves the tree in two steps. `budget` is shared by all of
 * one archive's links: once spent, the archive is refused.
 */
export function staysInside(staging: string, rel: string, target: string, links: ReadonlyMap<string, string>, budget = new LinkWalkBudget()): boolean {
  if (target.startsWith('/')) return false;
  const here = rel.split('/').slice(0, -1);
  // The components still to follow, the next one last.
  const todo = target.split('/').reverse();
  for (let hops = 0; todo.length > 0; ) {
    budget.levels -= here.length + 1;
    if (budget.levels < 0) throw new HostileArchiveError(`refusing the archive: its symlinks take more than ${LINK_WALK_LEVELS / 1e6} million directory lookups to follow`);
    const part = todo.pop() as string;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (here.length === 0) return false;
      here.pop();
      continue;
    }
    here.push(part);
    if (here.length > MAX_WALK_DEPTH) return false;
    const at = here.join('/');
    const next = links.get(at) ?? linkOnDisk(path.join(staging, at));
    if (next === undefined) continue;
    // Too many links on the way is a loop, or an attempt to hide one: not inside, as far as we can say.
    if (++hops > 40 || next.startsWith('/')) return false;
    here.pop();
    const parts = next.split('/');
    for (let i = parts.length - 1; i >= 0; i--) todo.push(parts[i] as string);
  }
  return true;
}

function linkOnDisk(abs: string): string | undefined {
  try {
    return lstatSync(abs).isSymbolicLink() ? readlinkSync(abs) : undefined;
  } catch {
    return undefined;
  }
}

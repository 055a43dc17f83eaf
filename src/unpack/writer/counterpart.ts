import { closeSync, constants, type Dir, fstatSync, lstatSync, opendirSync, openSync, readSync, type Stats, unlinkSync } from 'node:fs';
import { type KeptFile, keepableInPlace, unchanged } from '../../shared/kept.js';
import { parentOf, TrustedDirs } from '../../shared/tree-path.js';
import { closeQuietly, completeEntryFile, copyStart, createEntryFile, EntryConflictError, type FileEntry, writeChunks } from './file.js';

/**
 * Writing only what changed, for the rsync strategy's update of a dest that holds the previous build: each
 * regular file of the archive is compared, piece by piece as it arrives, with dest's file at the same path,
 * and it is created in staging only once a byte differs (the equal prefix copied from dest's file, checked
 * unchanged after the copy). A file equal to the end is never written: it becomes a KeptFile, and the merge
 * keeps dest's file and gives it the archive's attributes. In the benchmark's update (9,000 of 10,000 files
 * unchanged) that saves writing 9,000 files, comparing them again in the merge, and deleting them after.
 *
 * Loaded by the main thread and by each writer thread, so it imports only node:fs and leaves of its own.
 * Read only, and only where nobody but root and this user can change dest's directories (every one from
 * dest down, checked as host/trust.ts does; the merge checks again, sync/kept.ts): dest's file is opened
 * only when its directory's listing says it is a regular file (RegularFiles), with O_NOFOLLOW and O_NONBLOCK
 * (a symlink swapped in is refused, a leased file cannot block the thread), and compared only when fstat
 * says it is a regular file of the right size.
 */
export interface CounterpartPolicy {
  /** dest: the tree compared with. */
  root: string;
  /** Running as root: owners come from the archive (rsync -a), so a differing owner is a change too. */
  keepOwners: boolean;
  euid: number;
}

// O_NOCTTY: should a tty ever be opened here after all (swapped in by root after its directory was listed), it
// does not become this process's controlling terminal.
const READ = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
const SCRATCH_BYTES = 256 * 1024;
let scratchBuffer: Buffer | undefined;
const scratch = (): Buffer => {
  scratchBuffer ??= Buffer.allocUnsafe(SCRATCH_BYTES);
  return scratchBuffer;
};

/** dest's file at an entry's path, read as far as the archive's bytes have matched it. */
class Comparison {
  matched = 0;

  constructor(
    private readonly fd: number | undefined,
    readonly st: Stats,
    readonly size: number,
  ) {}

  /** Whether the next bytes of the archive's file are dest's next bytes. */
  matches(bytes: Uint8Array): boolean {
    if (bytes.length === 0) return true;
    if (this.fd === undefined) return false;
    const buf = scratch();
    try {
      for (let done = 0; done < bytes.length; ) {
        const want = Math.min(SCRATCH_BYTES, bytes.length - done);
        const got = readSync(this.fd, buf, 0, want, this.matched + done);
        if (got !== want || buf.compare(bytes, done, done + want, 0, want) !== 0) return false;
        done += want;
      }
    } catch {
      return false;
    }
    this.matched += bytes.length;
    return true;
  }

  /**
   * Copies the bytes that matched into `fd`, the staged file; false when dest's file changed meanwhile (so
   * they may not be the archive's).
   */
  copyMatchedTo(fd: number): boolean {
    if (this.matched === 0) return true;
    if (this.fd === undefined) return false;
    if (copyStart(this.fd, fd, this.matched, scratch()) !== this.matched) return false;
    return unchanged(fstatSync(this.fd), this.st);
  }

  close(): void {
    if (this.fd !== undefined) closeQuietly(this.fd);
  }
}

/** Which of dest's files may stand in for the archive's, with what is known about dest's directories. */
export class Counterparts {
  private readonly prefix: string;
  /** Whether nobody but root and this user can change a directory of dest, nor any above it (host/trust.ts). */
  private readonly dirs: TrustedDirs;
  private readonly files: RegularFiles;

  constructor(private readonly policy: CounterpartPolicy) {
    this.prefix = `${policy.root}/`;
    this.dirs = new TrustedDirs(policy.root, (st) => st.isDirectory() && (st.uid === 0 || st.uid === policy.euid) && (st.mode & 0o022) === 0);
    this.files = new RegularFiles(policy.root);
  }

  /** dest's file for `entry`, open for comparing, when it is one the merge could keep in place. */
  open(entry: FileEntry): Comparison | undefined {
    const want = entry.compare;
    if (!want) return undefined;
    const dir = parentOf(entry.rel);
    if (!this.dirs.has(dir)) return undefined;
    const abs = this.prefix + entry.rel;
    if (!this.files.has(dir, abs)) return undefined;
    let fd: number | undefined;
    try {
      fd = openSync(abs, READ);
      const st = fstatSync(fd);
      if (
        !st.isFile() ||
        st.size !== want.size ||
        racilyClean(st.ctimeMs, Date.now()) ||
        !keepableInPlace({ uid: want.uid, gid: want.gid, mode: entry.mode }, st, this.policy.keepOwners, this.policy.euid)
      ) {
        closeSync(fd);
        return undefined;
      }
      if (want.size === 0) {
        closeSync(fd);
        return new Comparison(undefined, st, 0);
      }
      return new Comparison(fd, st, want.size);
    } catch {
      // Gone, leased (EWOULDBLOCK), unreadable: the archive's file is written, as without a dest.
      if (fd !== undefined) closeQuietly(fd);
      return undefined;
    }
  }
}

/**
 * Which of dest's entries are regular files, from one listing per directory. Nothing else may be opened to
 * compare: opening a FIFO releases the application's writer waiting on it (which then loses what it wrote,
 * or dies of SIGPIPE), and opening a device runs its driver (a watchdog arms, a serial port resets what is
 * attached). An lstat per file says the same at twice the path lookups (it was 8% of the update's main
 * thread); a listing costs a few system calls per directory. A directory too large to list (an app's
 * uploads/ with a million files, where the archive has one) is asked about file by file, with lstat.
 * A listing is trusted until the download ends: only root or this user could swap a listed file for a FIFO
 * meanwhile (these directories are theirs alone), and an lstat before each open would leave a window too.
 */
class RegularFiles {
  /** Directory (relative to dest) -> its regular files' names, or null: too many entries, lstat each. */
  private readonly listed = new Map<string, Set<string> | null>();

  constructor(private readonly root: string) {}

  has(dir: string, abs: string): boolean {
    let names = this.listed.get(dir);
    if (names === undefined) {
      // A tar lists a directory's entries together, its subdirectories' in between: a few are in use at once.
      if (this.listed.size >= MAX_LISTED_DIRS) this.listed.clear();
      names = regularFilesIn(dir === '' ? this.root : `${this.root}/${dir}`);
      this.listed.set(dir, names);
    }
    if (names === null) return lstatSync(abs, { throwIfNoEntry: false })?.isFile() === true;
    return names.has(abs.slice(abs.lastIndexOf('/') + 1));
  }
}

const MAX_LISTED_DIRS = 64;
const MAX_LISTING = 4096;

function regularFilesIn(dir: string): Set<string> | null {
  const names = new Set<string>();
  let d: Dir | undefined;
  try {
    d = opendirSync(dir, { bufferSize: 128 });
    let n = 0;
    // Dirent types come from the directory itself; where the filesystem has none, node lstats the entry.
    for (let e = d.readSync(); e !== null; e = d.readSync()) {
      if (++n > MAX_LISTING) return null;
      if (e.isFile()) names.add(e.name);
    }
  } catch {
    // Gone or unreadable: nothing there to compare with.
  } finally {
    d?.closeSync();
  }
  return names;
}

/**
 * Whether a file last changed at `ctimeMs` may change again, unseen, after a comparison at `now` ("racily
 * clean", as git says of its index): a write within the same timestamp tick leaves mtime and ctime as they
 * were. Such a file is staged, not compared. A tick is up to 2 s where the filesystem keeps whole seconds
 * (ext4 with 128-byte inodes, FAT: every ctime a whole second), a few ms where it keeps nanoseconds (the
 * kernel's coarse clock); a ctime in the future is never trusted.
 */
export function racilyClean(ctimeMs: number, now: number): boolean {
  const tick = ctimeMs % 1000 === 0 ? 2000 : 20;
  return now - ctimeMs < tick;
}

/**
 * One regular file of the archive on its way to staging: compared with dest's first when dest's may stand
 * in for it, created as soon as it cannot. Whoever holds one calls end() or abandon(), which close it.
 */
export class StagedFile {
  private fd: number | undefined;
  private comparison: Comparison | undefined;
  /** dest's file changed while it was compared: nothing of this file is written. */
  private changed = false;

  constructor(
    readonly entry: FileEntry,
    counterparts: Counterparts | undefined,
  ) {
    this.comparison = counterparts?.open(entry);
    if (!this.comparison) this.fd = createEntryFile(entry);
  }

  write(bytes: Uint8Array): void {
    if (this.comparison) {
      if (this.comparison.matches(bytes)) return;
      this.diverge();
    }
    if (this.fd !== undefined) writeChunks(this.fd, [bytes]);
  }

  /** The file is complete: a KeptFile when dest's file stands in for it, else it is closed in staging. */
  end(): KeptFile | undefined {
    const c = this.comparison;
    if (c && c.matched === c.size) {
      this.comparison = undefined;
      c.close();
      return this.kept(c.st);
    }
    if (c) this.diverge();
    if (this.changed) return { ...this.kept(c?.st), changed: true };
    const fd = this.fd as number;
    this.fd = undefined;
    completeEntryFile(fd, this.entry);
    return undefined;
  }

  abandon(): void {
    this.comparison?.close();
    this.comparison = undefined;
    if (this.fd !== undefined) closeQuietly(this.fd);
    this.fd = undefined;
  }

  /** The first byte that differs: the staged file gets what matched so far, from dest's file. */
  private diverge(): void {
    const c = this.comparison as Comparison;
    this.comparison = undefined;
    try {
      this.fd = createEntryFile(this.entry);
      if (!c.copyMatchedTo(this.fd)) {
        closeQuietly(this.fd);
        this.fd = undefined;
        unlinkSync(this.entry.abs);
        this.changed = true;
      }
    } finally {
      c.close();
    }
  }

  private kept(st: Stats | undefined): KeptFile {
    const e = this.entry;
    const want = e.compare as NonNullable<FileEntry['compare']>;
    // An earlier layer's (or entry's) file at this path is replaced by dest's, as a later entry replaces it.
    if (want.replacing && !this.changed) removeStaged(e);
    return {
      rel: e.rel,
      mode: e.mode & 0o7777,
      uid: want.uid,
      gid: want.gid,
      mtime: e.mtime as number,
      atime: e.atime ?? (e.mtime as number),
      dev: st?.dev ?? -1,
      ino: st?.ino ?? -1,
      size: st?.size ?? -1,
      mtimeMs: st?.mtimeMs ?? -1,
      ctimeMs: st?.ctimeMs ?? -1,
    };
  }
}

function removeStaged(e: FileEntry): void {
  try {
    unlinkSync(e.abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'EISDIR' || code === 'EPERM') throw new EntryConflictError(`archive entry ${JSON.stringify(e.rel)} is a file where a directory already is`);
    throw err;
  }
}

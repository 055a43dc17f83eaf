/**
 * A regular file of the archive that was never written to staging, because dest already holds it byte for
 * byte: while unpacking, its bytes were compared with dest's file at the same path (unpack/writer/
 * counterpart.ts). The rsync strategy's merge keeps dest's file and gives it these attributes, exactly what
 * it would have done with a staged copy of equal content (sync/merge.ts), so nothing is written twice.
 *
 * dest's file is named by identity: the merge relies on the comparison only while that inode still has the
 * size, mtime and ctime it had then (sync/kept.ts); otherwise the archive is unpacked again in full.
 */
export interface KeptFile {
  /** Path relative to staging and to dest. */
  rel: string;
  /** What the staged file would have had. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch (whole seconds: a fraction would not come back from the kernel the same). */
  mtime: number;
  atime: number;
  /** dest's file, as it was when compared (fs.Stats' numbers: exact for inodes and sizes below 2^53). */
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  /** Relied on too: a rewrite in place can set the mtime back (utimes, cp -p), not the ctime. */
  ctimeMs: number;
  /**
   * dest's file changed while it was being compared (an application writing it): its bytes cannot stand in
   * for the archive's, and the staged file could not be completed from them either.
   */
  changed?: true;
}

/** What says a file is as it was: the same inode, size, mtime and ctime (a rewrite in place moves the ctime). */
export type Identity = Pick<KeptFile, 'dev' | 'ino' | 'size' | 'mtimeMs' | 'ctimeMs'>;

/** Whether `now` (an fs.Stats of dest's file) is the file as `then` saw it. */
export function unchanged(now: Identity, then: Identity): boolean {
  return now.dev === then.dev && now.ino === then.ino && now.size === then.size && now.mtimeMs === then.mtimeMs && now.ctimeMs === then.ctimeMs;
}

/** KeptFiles as they cross from a writer thread: a structured-clone object per file cost ~1.7 kB of heap. */
export interface PackedKept {
  rels: string[];
  nums: Float64Array;
}

const FIELDS = 11;

export function packKept(files: readonly KeptFile[]): PackedKept {
  const nums = new Float64Array(files.length * FIELDS);
  files.forEach((k, i) => {
    put(nums, i * FIELDS, k);
  });
  return { rels: files.map((k) => k.rel), nums };
}

function put(nums: Float64Array, at: number, k: KeptFile): void {
  nums[at] = k.mode;
  nums[at + 1] = k.uid;
  nums[at + 2] = k.gid;
  nums[at + 3] = k.mtime;
  nums[at + 4] = k.atime;
  nums[at + 5] = k.dev;
  nums[at + 6] = k.ino;
  nums[at + 7] = k.size;
  nums[at + 8] = k.mtimeMs;
  nums[at + 9] = k.ctimeMs;
  nums[at + 10] = k.changed ? 1 : 0;
}

/**
 * The kept files of one deploy, by path relative to dest, in columns: 10,000 of them as objects held
 * through the download took 15 MB of peak RSS (measured); as numbers in one array, under 2 MB.
 */
export class KeptFiles {
  private readonly at = new Map<string, number>();
  private nums = new Float64Array(FIELDS * 256);
  private used = 0;

  get size(): number {
    return this.at.size;
  }

  /** A later record for a path replaces the earlier one. */
  add(k: KeptFile): void {
    this.room(1);
    put(this.nums, this.used * FIELDS, k);
    this.at.set(k.rel, this.used++);
  }

  addPacked(p: PackedKept): void {
    this.room(p.rels.length);
    this.nums.set(p.nums, this.used * FIELDS);
    p.rels.forEach((rel, i) => {
      this.at.set(rel, this.used + i);
    });
    this.used += p.rels.length;
  }

  private room(more: number): void {
    if ((this.used + more) * FIELDS <= this.nums.length) return;
    const grown = new Float64Array(Math.max(this.nums.length * 2, (this.used + more) * FIELDS));
    grown.set(this.nums.subarray(0, this.used * FIELDS));
    this.nums = grown;
  }

  get(rel: string): KeptFile | undefined {
    const i = this.at.get(rel);
    return i === undefined ? undefined : this.record(rel, i);
  }

  private record(rel: string, i: number): KeptFile {
    const n = this.nums;
    const at = i * FIELDS;
    const k: KeptFile = {
      rel,
      mode: n[at] as number,
      uid: n[at + 1] as number,
      gid: n[at + 2] as number,
      mtime: n[at + 3] as number,
      atime: n[at + 4] as number,
      dev: n[at + 5] as number,
      ino: n[at + 6] as number,
      size: n[at + 7] as number,
      mtimeMs: n[at + 8] as number,
      ctimeMs: n[at + 9] as number,
    };
    if (n[at + 10]) k.changed = true;
    return k;
  }

  delete(rel: string): void {
    this.at.delete(rel);
  }

  clear(): void {
    this.at.clear();
    this.used = 0;
    this.now = undefined;
  }

  *values(): IterableIterator<KeptFile> {
    for (const [rel, i] of this.at) yield this.record(rel, i);
  }

  /** The paths, without a record made for each. */
  rels(): IterableIterator<string> {
    return this.at.keys();
  }

  /**
   * dest's files as the merge's check found them (sync/kept.ts), in columns beside the records: held as
   * one object each, 9,000 of them outlived their scavenges, V8 grew its young generation to hold them,
   * and the update's peak RSS came at the merge (+8 MB of heap committed, --trace-gc).
   */
  private now: Float64Array | undefined;

  noteCurrent(rel: string, c: Current): void {
    const i = this.at.get(rel);
    if (i === undefined) return;
    this.now ??= new Float64Array(this.used * CURRENT_FIELDS);
    const at = i * CURRENT_FIELDS;
    this.now[at] = c.uid;
    this.now[at + 1] = c.gid;
    this.now[at + 2] = c.mode;
    this.now[at + 3] = c.mtimeMs;
    this.now[at + 4] = c.nlink;
  }

  /** What noteCurrent() was told for `rel`, if anything. */
  current(rel: string): Current | undefined {
    const i = this.at.get(rel);
    const n = this.now;
    if (i === undefined || n === undefined || (i + 1) * CURRENT_FIELDS > n.length) return undefined;
    const at = i * CURRENT_FIELDS;
    const nlink = n[at + 4] as number;
    if (nlink === 0) return undefined;
    return { uid: n[at] as number, gid: n[at + 1] as number, mode: n[at + 2] as number, mtimeMs: n[at + 3] as number, nlink };
  }
}

/** What the merge needs of a kept file as dest has it now, to give it the archive's attributes. */
export interface Current {
  uid: number;
  gid: number;
  mode: number;
  mtimeMs: number;
  /** At least 1 for a file that is there. */
  nlink: number;
}

const CURRENT_FIELDS = 5;

/** A file found equal while unpacking that dest no longer holds as it was compared (sync/kept.ts, unpack/reuse.ts). */
export class StaleKeptError extends Error {
  override name = 'StaleKeptError';
  constructor(
    readonly file: KeptFile,
    dest: string,
  ) {
    super(`${dest}/${file.rel} changed after unpacking found it equal to the archive's (a pre command or the application wrote it)`);
  }
}

/** What comparing with dest while unpacking found, for the merge. */
export interface Compared {
  /** Files dest already had byte for byte: not staged. A path staging has after all is staging's. */
  kept: KeptFiles;
  /**
   * Every regular file in staging was compared with dest's first and differs from it (or dest's is not one
   * the merge could keep in place): the merge replaces them without reading both again.
   */
  stagedDiffer: boolean;
}

/** What keepableInPlace needs of an entry's attributes (a staged file's, or the ones it would have had). */
export interface Ownership {
  uid: number;
  gid: number;
  mode: number;
}

/**
 * Whether dest's regular file may be kept and given the archive's owner and mode in place. Not when that
 * changes the owner or mode of an inode another user may hold open for writing (one they own, or one their
 * group or everyone may write) or that has other names elsewhere: chowning it to root, or making it setuid,
 * would hand them a root file whose bytes they still control. Such a file is replaced by a staged one, a new
 * inode nobody else has ever held. `euid` is this process's: root and it are the trusted owners.
 */
export function keepableInPlace(src: Ownership, dst: Ownership & { nlink: number }, keepOwners: boolean, euid: number): boolean {
  const reowned = keepOwners && (dst.uid !== src.uid || dst.gid !== src.gid);
  if (!reowned && (dst.mode & 0o7777) === (src.mode & 0o7777)) return true;
  return (dst.uid === 0 || dst.uid === euid) && (dst.mode & 0o022) === 0 && dst.nlink === 1;
}

/**
 * A regular file of the archive that was never written to staging, because dest already holds it byte for
 * byte: while unpacking, its bytes were compared with dest's file at the same path (unpack/writer/
 * counterpart.ts). The rsync strategy's merge keeps dest's file and gives it these attributes, exactly what
 * it would have done with a staged copy of equal content (sync/merge.ts), so nothing is written twice.
 *
 * dest's file is named by identity: the merge relies on the comparison only while that inode still has the
 * size and mtime (to the nanosecond) it had then, and the ctime too when another user owns it
 * (sync/kept.ts); otherwise the archive is unpacked again in full. Crosses a thread boundary, so plain numbers and bigints only.
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
  /** dest's file, as it was when compared. */
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  /** Relied on too when another user owns the file: an owner can set its mtime back, not its ctime. */
  ctimeNs: bigint;
  /**
   * dest's file changed while it was being compared (an application writing it): its bytes cannot stand in
   * for the archive's, and the staged file could not be completed from them either.
   */
  changed?: true;
}

/** By path relative to dest. */
export type KeptFiles = ReadonlyMap<string, KeptFile>;

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

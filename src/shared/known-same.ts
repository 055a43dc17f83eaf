/**
 * A staged file whose bytes were compared, while it was unpacked, with the file at the same path in dest
 * and found equal. Both files are named by identity (inode, change time in nanoseconds, as decimal strings
 * so the record crosses a thread boundary): the merge trusts the comparison only when lstat still finds
 * these very inodes unchanged, so a file replaced or written to since (by a later layer, a hard link
 * entry, or the application) is compared again.
 */
export interface KnownSame {
  staged: { ino: string; ctimeNs: string };
  dest: { dev: string; ino: string; size: string; mtimeNs: string; ctimeNs: string };
}

/** Staged path (relative, as the merge names it) to what was found while unpacking. */
export type KnownSameFiles = ReadonlyMap<string, KnownSame>;

import { lstatSync, type Stats } from 'node:fs';
import { isTrustedDir } from '../host/trust.js';
import { type KeptFiles, keepableInPlace, StaleKeptError, unchanged } from '../shared/kept.js';
import { Scavenger } from '../shared/scavenger.js';
import { parentOf, TrustedDirs } from '../shared/tree-path.js';

/** What the merge needs of a kept file as dest has it now, to give it the archive's attributes. */
export type Current = Pick<Stats, 'uid' | 'gid' | 'mode' | 'mtimeMs' | 'nlink'>;

export { StaleKeptError };

/**
 * Checks every file found equal while unpacking (shared/kept.ts) before the merge changes anything, and
 * returns them as dest has them now. StaleKeptError for the first that dest no longer holds as it was
 * compared: not the same inode, size, mtime or ctime any more (a rewrite can set the mtime back, never the
 * ctime; so a pre command's chmod or chown unpacks again too), no longer one the merge may keep in place (its
 * owner or mode changed, by a pre command say), or in a directory another user can now change (the merge
 * replaces those whole, from staging, where the file is not). The deploy then unpacks again.
 */
export function verifyKept(kept: KeptFiles, dest: string): Map<string, Current> {
  const euid = process.geteuid?.() ?? -1;
  const keepOwners = euid === 0;
  const dirs = new TrustedDirs(dest, isTrustedDir);
  const current = new Map<string, Current>();
  // A file's fs.Stats is garbage at once; left to V8, the young generation grew to hold thousands of them
  // and raised the update's peak RSS, which came here, after the download's buffers were gone.
  const scavenger = Scavenger.perFile();
  for (const k of kept.values()) {
    scavenger.discarded(1);
    if (k.changed || !dirs.has(parentOf(k.rel))) throw new StaleKeptError(k, dest);
    const st = lstatSync(`${dest}/${k.rel}`, { throwIfNoEntry: false });
    // Its ctime too, whoever owns it: an owner's utimes, and root's cp -p, rsync --inplace or touch -r, put
    // the mtime back after a rewrite in place; only the ctime says the file was not touched.
    if (!st?.isFile() || !unchanged(st, k)) throw new StaleKeptError(k, dest);
    if (!keepableInPlace(k, st, keepOwners, euid)) throw new StaleKeptError(k, dest);
    current.set(k.rel, { uid: st.uid, gid: st.gid, mode: st.mode, mtimeMs: st.mtimeMs, nlink: st.nlink });
  }
  return current;
}

import { lstatSync } from 'node:fs';
import { isTrustedDir } from '../host/trust.js';
import { type KeptFiles, keepableInPlace, StaleKeptError, unchanged } from '../shared/kept.js';
import { Scavenger } from '../shared/scavenger.js';
import { parentOf, TrustedDirs } from '../shared/tree-path.js';

export { StaleKeptError };

/**
 * Checks every file found equal while unpacking (shared/kept.ts) before the merge changes anything, and
 * returns them as dest has them now. StaleKeptError for the first that dest no longer holds as it was
 * compared: not the same inode, size, mtime or ctime any more (a rewrite can set the mtime back, never the
 * ctime; so a pre command's chmod or chown unpacks again too), no longer one the merge may keep in place (its
 * owner or mode changed, by a pre command say), or in a directory another user can now change (the merge
 * replaces those whole, from staging, where the file is not). The deploy then unpacks again. What it found
 * is noted in `kept` (KeptFiles.current) for the merge.
 */
export function verifyKept(kept: KeptFiles, dest: string): void {
  const euid = process.geteuid?.() ?? -1;
  const keepOwners = euid === 0;
  const dirs = new TrustedDirs(dest, isTrustedDir);
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
    kept.noteCurrent(k.rel, st);
  }
}

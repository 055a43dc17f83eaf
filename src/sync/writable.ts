import { chmodSync, lstatSync } from 'node:fs';

/**
 * Running as a user, not root, a read-only directory of ours (an archive's 0555) cannot have entries
 * renamed into or out of it: it is given its owner's write permission for as long as the merge works in
 * it, and its own mode back afterwards (apply), as rsync does. Direct calls: the merge makes this one for
 * each directory it walks (see mergeDir).
 */
export function writable(dir: string): void {
  if (process.geteuid?.() === 0) return;
  const st = lstatSync(dir);
  if ((st.mode & 0o700) !== 0o700) chmodSync(dir, (st.mode & 0o7777) | 0o700);
}

import { mkdir, mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import { removeTree } from '../host/remove-tree.js';

/**
 * A staging tree is `tree` inside a directory of its own that only this user can enter (mkdtemp: 0700).
 * The tree itself takes whatever the archive says of its root (a `./` entry's owner and mode, then
 * dest_mode), and the archive may give another user directories inside it: the holder keeps all of it
 * out of their reach, whatever those say, until the tree is renamed into place. A tree that was its own
 * private directory was reachable as soon as a `./` entry made it 0755 or gave it to the app user, who
 * could then swap a directory inside for a symlink and turn root's prune or carry into one outside dest.
 */
const TREE = 'tree';

/** A new staging tree; `prefix` names its holder (mkdtemp adds a random suffix). */
export async function stagingIn(prefix: string): Promise<string> {
  const holder = await mkdtemp(prefix);
  const tree = path.join(holder, TREE);
  await mkdir(tree, { mode: 0o700 });
  return tree;
}

/** The private directory a staging tree is in: the name beside dest (or in releases_dir) that goes with it. */
export function holderOf(staging: string): string {
  return path.dirname(staging);
}

/** Removes a staging tree and its holder. */
export function removeStaging(staging: string): Promise<void> {
  return removeTree(holderOf(staging));
}

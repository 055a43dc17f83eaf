import { chmod, rename } from 'node:fs/promises';

/**
 * Puts a finished staging tree at `to`, giving it dest_mode only now. Until this moment the tree's own
 * directory is 0700, so nobody else can reach the directories the archive gives them inside it while
 * stretcher works there by path (pruning excludes, carrying excluded entries): one swapped for a symlink
 * would have turned root's chmod or rm into one outside dest. Between the chmod and the rename nothing
 * else is done in the tree.
 */
export async function publish(staging: string, to: string, destMode: number): Promise<void> {
  await chmod(staging, destMode);
  await rename(staging, to);
}

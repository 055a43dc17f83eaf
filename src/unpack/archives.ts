import { createReadStream } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Log } from '../shared/log.js';
import type { Archive } from '../manifest/types.js';
import { downloadVerified, fileSink, type TransferOptions } from '../transfer/download.js';
import type { Compared } from '../shared/kept.js';
import { type GitTree, unpackGitTree } from './git-tree.js';
import { comparedOf, reuseFor } from './reuse.js';
import { createUnpacker, type HardLinks, type UnpackLimits } from './unpacker.js';

/**
 * Downloads, verifies and unpacks a manifest's archives into `staging`. One archive streams straight into
 * the unpacker; layers are each downloaded and verified to a file in `workDir` first, so that retrying one
 * never disturbs the others, and then unpacked in order into the same tree, a later layer's files
 * replacing an earlier one's. A git source's commit, already fetched and verified (`gitTrees`, in the
 * order of the git archives), is unpacked from its cache in its place in that order.
 *
 * With `reuseDest` (dest, for the rsync strategy's merge), the files of tar archives that dest already has
 * byte for byte are not written: what is returned says which they are (shared/kept.ts). `hardLinks`: how a
 * tar's hard links are made (unpacker.ts).
 */
export async function unpackArchives(
  archives: readonly Archive[],
  gitTrees: readonly GitTree[],
  staging: string,
  workDir: string,
  transfer: TransferOptions,
  limits: UnpackLimits,
  log: Log,
  reuseDest?: string,
  hardLinks: HardLinks = 'link',
): Promise<Compared | undefined> {
  const reuse = reuseDest === undefined ? undefined : reuseFor(reuseDest);
  const spool = path.join(workDir, 'spool');
  const [only] = archives;
  const git = { env: transfer.env, log, signal: transfer.signal };
  if (archives.length === 1 && only?.kind === 'git') {
    await unpackGitTree(gitTrees[0] as GitTree, staging, spool, limits, git);
    return undefined;
  }
  if (archives.length === 1 && only?.kind === 'file') {
    let attempt = 0;
    await downloadVerified(only.src, only.checksum, transfer, async () => {
      // A retry starts again from an empty tree.
      if (attempt++ > 0) {
        await emptyDir(staging);
        reuse?.kept.clear();
      }
      return createUnpacker(staging, limits, log, spool, reuse, hardLinks);
    });
    return reuse && comparedOf(reuse);
  }
  const files: (string | GitTree)[] = [];
  const trees = [...gitTrees];
  for (const [i, layer] of archives.entries()) {
    log.info(`layer ${i + 1} of ${archives.length}: ${layer.src}`);
    if (layer.kind === 'git') files.push(trees.shift() as GitTree);
    else files.push(await downloadVerified(layer.src, layer.checksum, transfer, async () => fileSink(path.join(workDir, `layer-${i}`))));
  }
  for (const file of files) {
    if (typeof file !== 'string') {
      await unpackGitTree(file, staging, spool, limits, git);
      if (reuse) Object.assign(reuse, { layered: true, allCompared: false });
      continue;
    }
    const unpacker = createUnpacker(staging, limits, log, spool, reuse, hardLinks);
    try {
      await pipeline(createReadStream(file), unpacker.sink, { signal: transfer.signal });
    } catch (err) {
      await unpacker.close();
      throw err;
    }
    await unpacker.finish();
    await rm(file, { force: true });
    if (reuse) reuse.layered = true;
  }
  log.info(`merged ${archives.length} layers`);
  return reuse && comparedOf(reuse);
}

async function emptyDir(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await rm(path.join(dir, name), { recursive: true, force: true });
}

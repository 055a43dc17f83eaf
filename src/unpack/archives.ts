import { createReadStream } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Log } from '../shared/log.js';
import type { Archive } from '../manifest/types.js';
import { downloadVerified, fileSink, type TransferOptions } from '../transfer/download.js';
import type { KnownSame, KnownSameFiles } from '../shared/known-same.js';
import { createUnpacker, type UnpackLimits } from './unpacker.js';

/**
 * Downloads, verifies and unpacks a manifest's archives into `staging`. One archive streams straight into
 * the unpacker; layers are each downloaded and verified to a file in `workDir` first, so that retrying one
 * never disturbs the others, and then unpacked in order into the same tree, a later layer's files
 * replacing an earlier one's.
 */
export async function unpackArchives(
  archives: readonly Archive[],
  staging: string,
  workDir: string,
  transfer: TransferOptions,
  limits: UnpackLimits,
  log: Log,
  compareWith?: string,
): Promise<KnownSameFiles | undefined> {
  const spool = path.join(workDir, 'spool');
  const [only] = archives;
  if (archives.length === 1 && only) {
    let attempt = 0;
    const unpacked = await downloadVerified(only.src, only.checksum, transfer, async (size) => {
      // A retry starts again from an empty tree.
      if (attempt++ > 0) await emptyDir(staging);
      return createUnpacker(staging, limits, log, spool, size, compareWith);
    });
    return unpacked.same;
  }
  const files: string[] = [];
  const same = new Map<string, KnownSame>();
  for (const [i, layer] of archives.entries()) {
    log.info(`layer ${i + 1} of ${archives.length}: ${layer.src}`);
    files.push(await downloadVerified(layer.src, layer.checksum, transfer, async () => fileSink(path.join(workDir, `layer-${i}`))));
  }
  for (const file of files) {
    const unpacker = createUnpacker(staging, limits, log, spool, (await stat(file)).size, compareWith);
    try {
      await pipeline(createReadStream(file), unpacker.sink, { signal: transfer.signal });
    } catch (err) {
      await unpacker.close();
      throw err;
    }
    // A later layer's file replaces an earlier one's report; the merge checks the inodes in any case.
    for (const [rel, known] of (await unpacker.finish()).same ?? []) same.set(rel, known);
    await rm(file, { force: true });
  }
  log.info(`merged ${archives.length} layers`);
  return compareWith ? same : undefined;
}

async function emptyDir(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await rm(path.join(dir, name), { recursive: true, force: true });
}

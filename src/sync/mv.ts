import { randomBytes } from 'node:crypto';
import { lstat, mkdtemp, rename } from 'node:fs/promises';
import path from 'node:path';
import { siblingPrefix } from '../host/paths.js';
import { removeTree } from '../host/remove-tree.js';
import { errorMessage, StretcherError } from '../shared/errors.js';
import { Carrier, Custody } from './carry.js';
import { stageBeside, workspaceFor } from './debris.js';
import { publish } from './publish.js';
import { checkDestination } from './destination.js';
import { pruneExcluded } from './excludes.js';
import type { SyncStrategy } from './types.js';

/**
 * Unpacks beside dest (same filesystem) and renames the tree into place. Go stretcher staged in $TMPDIR,
 * so the rename failed across devices, and it refused an existing dest; here an existing dest is moved
 * aside, its excluded entries (rsync's meaning) carried into the new tree while that is still private,
 * the new tree renamed in, and the old one removed.
 */
export const mvStrategy = (dest: string): SyncStrategy => ({
  name: 'mv',
  async prepare() {
    await checkDestination(dest, 'directory', 'mv');
    if ((await workspaceFor(dest)) === dest) throw new StretcherError('DEST_INVALID', `dest ${dest} is a mount point, which mv cannot replace: use sync_strategy: rsync, which updates it in place`);
    return {};
  },
  createStaging: () => stageBeside(dest),
  async sync(ctx) {
    const { staging, log } = ctx;
    const rules = await pruneExcluded(staging, ctx.excludes, ctx.excludeFrom, log, 'mv');
    const existing = await lstat(dest).catch(() => undefined);
    if (!existing) {
      await publish(staging, dest, ctx.destMode);
      log.info(`mv: ${dest} created`);
      return {};
    }
    const parent = path.dirname(dest);
    const backup = path.join(parent, `${siblingPrefix(dest, 'old')}${process.pid}-${randomBytes(4).toString('hex')}`);
    const custody = new Custody(await mkdtemp(path.join(parent, `${siblingPrefix(dest, 'custody')}${process.pid}-`)));
    const carrier = new Carrier(rules, custody, process.geteuid?.() === 0);
    try {
      // dest's parent is trusted: nobody else can swap dest or what it is renamed to.
      await rename(dest, backup);
      try {
        await carrier.carryInto(backup, staging, '');
        await publish(staging, dest, ctx.destMode);
      } catch (err) {
        await carrier.undo();
        await rename(backup, dest);
        throw err;
      }
    } catch (err) {
      throw new StretcherError('SYNC_FAILED', `mv to ${dest} failed: ${errorMessage(err)}`);
    }
    if (carrier.carried) log.info(`mv: kept ${carrier.carried} excluded entries from the previous ${path.basename(dest)}`);
    log.info(`mv: ${dest} replaced`);
    // Into custody first: a process killed while removing it leaves debris the next run removes, never a
    // half-removed `.stretcher-old-*` that it would put back should dest be missing by then.
    const previous = await rename(backup, custody.place('previous')).then(
      () => [custody.dir],
      () => [backup, custody.dir],
    );
    const leftovers = (async () => {
      for (const tree of previous) await removeTree(tree).catch((err: unknown) => log.warn(errorMessage(err)));
    })();
    return { leftovers };
  },
});

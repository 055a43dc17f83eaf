import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage, StretcherError } from '../shared/errors.js';
import type { Log } from '../shared/log.js';
import { removeTree } from '../host/remove-tree.js';
import { siblingPrefix } from '../host/paths.js';
import { stageBeside } from './debris.js';
import { pruneExcluded, walkExcluded, type ExcludeRule } from './excludes.js';
import type { SyncStrategy } from './types.js';

/**
 * Unpacks beside dest (same filesystem) and renames the tree into place. Go stretcher staged in $TMPDIR,
 * so the rename failed across devices, and it refused an existing dest; here an existing dest is moved
 * aside, the new tree renamed in, and the old one removed. Excluded entries follow rsync's meaning: not
 * deployed from the archive, and carried over from the old dest into the new tree.
 */
export const mvStrategy: SyncStrategy = {
  name: 'mv',
  async createStaging(dest) {
    const staging = await stageBeside(dest);
    if (!staging) throw new StretcherError('DEST_INVALID', `the parent directory of dest, ${path.dirname(dest)}, does not exist`);
    return staging;
  },
  async sync(ctx) {
    const { staging, dest, log } = ctx;
    const rules = await pruneExcluded(staging, ctx.excludes, ctx.excludeFrom, log, 'mv');

    const existing = await lstat(dest).catch(() => undefined);
    if (existing?.isSymbolicLink()) throw new StretcherError('DEST_INVALID', `dest ${dest} is a symlink; the mv strategy replaces directories only`);
    if (existing && !existing.isDirectory()) throw new StretcherError('DEST_INVALID', `dest ${dest} exists and is not a directory`);

    const moved: { from: string; to: string }[] = [];
    const undoMoves = async (): Promise<void> => {
      for (const m of moved.reverse()) await rename(m.to, m.from).catch(() => {});
    };
    let backup: string | undefined;
    try {
      if (existing) await carryExcluded(dest, staging, rules, moved, log);
      if (existing) {
        backup = path.join(path.dirname(dest), `${siblingPrefix(dest, 'old')}${process.pid}-${randomBytes(4).toString('hex')}`);
        await rename(dest, backup);
      }
      try {
        await rename(staging, dest);
      } catch (err) {
        if (backup) await rename(backup, dest);
        backup = undefined;
        throw err;
      }
    } catch (err) {
      await undoMoves();
      throw new StretcherError('SYNC_FAILED', `mv to ${dest} failed: ${errorMessage(err)}`);
    }
    log.info(`mv: ${dest} replaced${existing ? '' : ' (created)'}`);
    if (backup) await removeTree(backup);
    return {};
  },
};

/**
 * Excluded entries already in dest survive a deploy (rsync --delete spares them). Files are hard-linked,
 * so the old tree stays whole until the switch; directories are moved, and moved back on failure.
 */
async function carryExcluded(dest: string, staging: string, rules: ExcludeRule[], moved: { from: string; to: string }[], log: Log): Promise<void> {
  const carried = await walkExcluded(dest, rules, async (rel, isDir) => {
    const from = path.join(dest, rel);
    const to = path.join(staging, rel);
    const parentOk = await ensureParent(dest, staging, path.posix.dirname(rel));
    if (!parentOk) {
      log.warn(`mv: cannot keep excluded ${rel}: the new tree has a file where its directory was`);
      return;
    }
    if (await lstat(to).catch(() => undefined)) return;
    if (!isDir) {
      try {
        await link(from, to);
        return;
      } catch {
        // Some filesystems or protections refuse hard links; moving works everywhere on one filesystem.
      }
    }
    await rename(from, to);
    moved.push({ from, to });
  });
  if (carried) log.info(`mv: kept ${carried} excluded entries from the previous ${path.basename(dest)}`);
}

/** Creates rel's parent directories in staging with dest's modes; false if staging has a non-directory there. */
async function ensureParent(dest: string, staging: string, relDir: string): Promise<boolean> {
  if (relDir === '.' || relDir === '') return true;
  let rel = '';
  for (const part of relDir.split('/')) {
    rel = rel ? `${rel}/${part}` : part;
    const target = path.join(staging, rel);
    const st = await lstat(target).catch(() => undefined);
    if (st) {
      if (!st.isDirectory()) return false;
      continue;
    }
    const mode = (await stat(path.join(dest, rel))).mode & 0o7777;
    await mkdir(target, { mode });
  }
  return true;
}

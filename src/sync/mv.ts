import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage, StretcherError } from '../errors.js';
import type { Log } from '../log.js';
import { isAlive } from '../pid.js';
import { pruneExcluded, walkExcluded, type ExcludeRule } from './excludes.js';
import type { SyncStrategy } from './types.js';

/** Sibling names of dest that belong to stretcher: `.app.stretcher-new-<pid>-...` and `.app.stretcher-old-<pid>-...`. */
const siblingPrefix = (dest: string, kind: 'new' | 'old'): string => `.${path.basename(dest)}.stretcher-${kind}-`;

/**
 * Unpacks beside dest (same filesystem) and renames the tree into place. Go stretcher staged in $TMPDIR,
 * so the rename failed across devices, and it refused an existing dest; here an existing dest is moved
 * aside, the new tree renamed in, and the old one removed. Excluded entries follow rsync's meaning: not
 * deployed from the archive, and carried over from the old dest into the new tree.
 */
export const mvStrategy: SyncStrategy = {
  name: 'mv',
  async createStaging(dest) {
    const parent = path.dirname(dest);
    const st = await stat(parent).catch(() => undefined);
    if (!st?.isDirectory()) throw new StretcherError(`the parent directory of dest, ${parent}, does not exist`);
    return mkdtemp(path.join(parent, `${siblingPrefix(dest, 'new')}${process.pid}-`));
  },
  async sync(ctx) {
    const { staging, dest, log } = ctx;
    const rules = await pruneExcluded(staging, ctx.excludes, ctx.excludeFrom, log, 'mv');

    const existing = await lstat(dest).catch(() => undefined);
    if (existing?.isSymbolicLink()) throw new StretcherError(`dest ${dest} is a symlink; the mv strategy replaces directories only`);
    if (existing && !existing.isDirectory()) throw new StretcherError(`dest ${dest} exists and is not a directory`);

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
      throw new StretcherError(`mv to ${dest} failed: ${errorMessage(err)}`);
    }
    log.info(`mv: ${dest} replaced${existing ? '' : ' (created)'}`);
    if (backup) await rm(backup, { recursive: true, force: true });
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

/**
 * A process killed mid-deploy leaves `.stretcher-new-*` trees beside dest, or, killed between the two
 * renames, dest missing and the old tree at `.stretcher-old-*`. The next run puts the old tree back and
 * removes the rest. Trees of live processes are left alone.
 */
export async function recoverMvDebris(dest: string, log: Log): Promise<void> {
  const parent = path.dirname(dest);
  const names = await readdir(parent).catch(() => [] as string[]);
  for (const kind of ['old', 'new'] as const) {
    const prefix = siblingPrefix(dest, kind);
    for (const name of names.filter((n) => n.startsWith(prefix))) {
      const pid = Number(name.slice(prefix.length).split('-')[0]);
      if (Number.isInteger(pid) && isAlive(pid)) continue;
      const abs = path.join(parent, name);
      if (kind === 'old' && !(await lstat(dest).catch(() => undefined))) {
        await rename(abs, dest);
        log.warn(`mv: restored ${dest} from an interrupted deploy`);
        continue;
      }
      await rm(abs, { recursive: true, force: true });
      log.info(`mv: removed ${abs}, left by an interrupted deploy`);
    }
  }
}

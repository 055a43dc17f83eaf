import { lstat, mkdtemp, readdir, rename, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { CommandError, runProgram } from '../hooks/run.js';
import { StretcherError } from '../shared/errors.js';
import { stageBeside } from './debris.js';
import { pruneExcluded, readExcludeFrom } from './excludes.js';
import type { SyncContext, SyncStrategy } from './types.js';

export interface RsyncOptions {
  /** Replaces rsync's `-v` (--rsync-verbose); empty drops it. */
  verbose: string;
}

/** Go stretcher's argv, exactly: `rsync -a --delete -v [--exclude-from F] [--exclude P]... staging/ dest/`. */
export function rsyncArgs(ctx: Pick<SyncContext, 'staging' | 'dest' | 'excludes' | 'excludeFrom'>, verbose: string): string[] {
  const args = ['-a', '--delete'];
  if (verbose !== '') args.push(verbose);
  if (ctx.excludeFrom !== undefined) args.push('--exclude-from', path.join(ctx.staging, ctx.excludeFrom));
  for (const pattern of ctx.excludes) args.push('--exclude', pattern);
  args.push(`${ctx.staging}/`, `${ctx.dest}/`);
  return args;
}

export const rsyncStrategy = (options: RsyncOptions): SyncStrategy => ({
  name: 'rsync',
  // Beside dest when possible, so that a first deploy can be renamed into place (below); otherwise rsync
  // copies from TMPDIR and reports a missing parent itself, as in Go stretcher.
  createStaging: async (dest, workDir) => (await stageBeside(dest)) ?? mkdtemp(path.join(workDir, 'staging-')),
  async sync(ctx) {
    if (await moveIntoEmptyDest(ctx)) return {};
    // A missing or escaping exclude file is a clear error here rather than an rsync usage message.
    if (ctx.excludeFrom !== undefined) await readExcludeFrom(ctx.staging, ctx.excludeFrom);
    const args = rsyncArgs(ctx, options.verbose);
    ctx.log.info(`rsync ${args.join(' ')}`);
    try {
      await runProgram('rsync', args, { cwd: ctx.cwd, env: ctx.env, log: ctx.log, signal: ctx.signal, label: 'rsync' });
      return {};
    } catch (err) {
      if (err instanceof CommandError) throw new StretcherError('SYNC_FAILED', `sync to ${ctx.dest} failed: ${err.message}`);
      throw err;
    }
  },
});

/**
 * `rsync -a --delete staging/ dest/` into an absent or empty dest makes dest exactly the unpacked tree
 * (excluded entries left out), modes, owners and times included. Renaming the tree into place gives the
 * same result without copying every file a second time: first deploys on new hosts take half the time.
 */
async function moveIntoEmptyDest(ctx: SyncContext): Promise<boolean> {
  if (path.dirname(ctx.staging) !== path.dirname(ctx.dest)) return false;
  const st = await lstat(ctx.dest).catch(() => undefined);
  if (st && !(st.isDirectory() && (await readdir(ctx.dest)).length === 0)) return false;
  if (st) {
    try {
      await rmdir(ctx.dest);
    } catch {
      // A mount point (EBUSY), or something appeared meanwhile: copy with rsync after all.
      return false;
    }
  }
  await pruneExcluded(ctx.staging, ctx.excludes, ctx.excludeFrom, ctx.log, 'rsync');
  await rename(ctx.staging, ctx.dest);
  ctx.log.info(`rsync: ${ctx.dest} was empty, so the unpacked tree was moved into place instead of copied`);
  return true;
}

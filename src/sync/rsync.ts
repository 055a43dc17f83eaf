import { chmod, lstat, readdir, rmdir, utimes } from 'node:fs/promises';
import path from 'node:path';
import { CommandError, runProgram } from '../hooks/run.js';
import { removeTree } from '../host/remove-tree.js';
import { untrustedBecause, UntrustedPathError } from '../host/trust.js';
import { formatDuration } from '../shared/duration.js';
import { errorMessage, StretcherError } from '../shared/errors.js';
import { privateDir, stageBeside } from './debris.js';
import { checkDestination } from './destination.js';
import { excludeRules, isExcluded, pruneExcluded, type ExcludeRule } from './excludes.js';
import { StaleKeptError } from './kept.js';
import { mergeInto } from './merge.js';
import { publish } from './publish.js';
import { holderOf } from './staging.js';
import type { SyncContext, SyncStrategy } from './types.js';

export interface RsyncOptions {
  /** Replaces rsync's `-v` (--rsync-verbose); empty drops it. */
  verbose: string;
  /**
   * Run the rsync program (--rsync-verbose was given: its own output was asked for) instead of
   * stretcher's merge, which gives the same tree.
   */
  program: boolean;
}

/**
 * Go stretcher's argv, plus --checksum: `rsync -a --delete --checksum -v [--exclude-from F] [--exclude P]...
 * staging/ dest/`. Without --checksum, rsync skips a changed file whose size and mtime did not change,
 * which is every file of a reproducible build (mtime 1, SOURCE_DATE_EPOCH).
 */
export function rsyncArgs(ctx: Pick<SyncContext, 'staging' | 'dest' | 'excludes' | 'excludeFrom'>, verbose: string): string[] {
  const args = ['-a', '--delete', '--checksum'];
  if (verbose !== '') args.push(verbose);
  if (ctx.excludeFrom !== undefined) args.push('--exclude-from', path.join(ctx.staging, ctx.excludeFrom));
  for (const pattern of ctx.excludes) args.push('--exclude', pattern);
  args.push(`${ctx.staging}/`, `${ctx.dest}/`);
  return args;
}

/**
 * The default strategy: dest ends exactly as `rsync -a --delete --checksum` with the manifest's excludes
 * leaves it. An absent or empty dest gets the unpacked tree renamed into place; otherwise the staged
 * entries are merged in by renames (merge.ts), which writes nothing twice and compares content, or, with
 * --rsync-verbose, the rsync program copies them.
 */
export const rsyncStrategy = (dest: string, options: RsyncOptions): SyncStrategy => ({
  name: 'rsync',
  ...(options.program ? {} : { reusesDest: true as const }),
  separateHardLinks: true,
  async prepare() {
    await checkDestination(dest, 'directory', 'rsync');
    return {};
  },
  createStaging: () => stageBeside(dest),
  async sync(ctx) {
    if (!ctx.compared?.kept.size && (await moveIntoEmptyDest(ctx))) return {};
    const rules = await excludeRules(ctx.staging, ctx.excludes, ctx.excludeFrom);
    if (options.program) await runRsync(ctx, options.verbose, rules);
    else await merge(ctx, rules);
    return {};
  },
});

async function merge(ctx: SyncContext, rules: ExcludeRule[]): Promise<void> {
  const started = performance.now();
  const custody = await privateDir(ctx.dest, 'custody');
  // A mount point holds this deploy's own directories: they are not part of what is merged, and they go
  // before dest gets its final times.
  const inside = path.dirname(custody) === ctx.dest;
  const times = inside ? await lstat(ctx.staging) : undefined;
  try {
    const own = new Set(inside ? [path.basename(holderOf(ctx.staging)), path.basename(custody)] : []);
    const m = await mergeInto(ctx.staging, ctx.dest, {
      rules,
      log: ctx.log,
      custody,
      keepOwners: process.geteuid?.() === 0,
      ignore: own,
      rootMode: ctx.destMode,
      ...(ctx.compared ? { compared: ctx.compared } : {}),
    });
    const early = m.comparedEarlier ? `; ${m.comparedEarlier} of them while unpacking` : '';
    ctx.log.info(
      `sync: ${ctx.dest} updated in ${formatDuration(performance.now() - started)}: ${m.added} added, ${m.replaced} replaced, ${m.removed} removed, ${m.unchanged} already as in the archive (content compared${early})`,
      {
        added: m.added,
        replaced: m.replaced,
        removed: m.removed,
        kept: m.unchanged,
      },
    );
  } catch (err) {
    // Nothing changed yet: the deploy unpacks again and syncs from that.
    if (err instanceof StaleKeptError) throw err;
    throw new StretcherError('SYNC_FAILED', `sync to ${ctx.dest} failed`, { cause: err });
  } finally {
    for (const tree of inside ? [custody, holderOf(ctx.staging)] : [custody]) await removeTree(tree).catch((err: unknown) => ctx.log.warn(errorMessage(err)));
    if (times) await utimes(ctx.dest, times.atime, times.mtime).catch(() => {});
  }
}

/**
 * The rsync program works by path inside dest, like any program without openat(): it may only run where
 * every directory it writes in is one nobody but root and this user can change.
 */
async function runRsync(ctx: SyncContext, verbose: string, rules: ExcludeRule[]): Promise<void> {
  await checkTreeTrusted(ctx.dest, rules);
  // rsync -a gives dest the mode of the tree it copies: the tree gets dest_mode in its private holder.
  await chmod(ctx.staging, ctx.destMode);
  const args = rsyncArgs(ctx, verbose);
  ctx.log.info(`rsync ${args.join(' ')}`);
  try {
    await runProgram('rsync', args, { cwd: ctx.cwd, env: ctx.env, log: ctx.log, signal: ctx.signal, label: 'rsync', stderrIsErrors: true });
  } catch (err) {
    if (err instanceof CommandError) throw new StretcherError('SYNC_FAILED', `sync to ${ctx.dest} failed: ${err.message}`);
    throw err;
  }
}

async function checkTreeTrusted(dest: string, rules: readonly ExcludeRule[], rel = ''): Promise<void> {
  const dir = path.join(dest, rel);
  const why = untrustedBecause(await lstat(dir));
  if (why) {
    throw new UntrustedPathError(
      `refusing to run rsync in ${dir}: it ${why}, so rsync could be made to write or delete elsewhere; without --rsync-verbose stretcher's own sync replaces such a directory safely, or exclude it, or make it root-owned and not group- or world-writable`,
    );
  }
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const relEntry = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory() && !isExcluded(rules, relEntry, true)) await checkTreeTrusted(dest, rules, relEntry);
  }
}

/**
 * `rsync -a --delete staging/ dest/` into an absent or empty dest makes dest exactly the unpacked tree
 * (excluded entries left out), modes, owners and times included. Renaming the tree into place gives the
 * same result without copying every file a second time.
 */
async function moveIntoEmptyDest(ctx: SyncContext): Promise<boolean> {
  const st = await lstat(ctx.dest).catch(() => undefined);
  if (st && !(st.isDirectory() && (await readdir(ctx.dest)).length === 0)) return false;
  if (path.dirname(holderOf(ctx.staging)) !== path.dirname(ctx.dest)) return false;
  if (st) {
    try {
      await rmdir(ctx.dest);
    } catch {
      // A mount point (EBUSY), or something appeared meanwhile: merge into it after all.
      return false;
    }
  }
  await pruneExcluded(ctx.staging, ctx.excludes, ctx.excludeFrom, ctx.log, 'rsync');
  await publish(ctx.staging, ctx.dest, ctx.destMode);
  ctx.log.info(`rsync: ${ctx.dest} was empty, so the unpacked tree was moved into place instead of copied`);
  return true;
}

import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import { runProgram } from '../commands.js';
import { CommandError } from '../commands.js';
import { StretcherError } from '../errors.js';
import { readExcludeFrom } from './excludes.js';
import type { SyncContext, SyncStrategy } from './types.js';

/** Go stretcher's argv, exactly: `rsync -a --delete -v [--exclude-from F] [--exclude P]... staging/ dest/`. */
export function rsyncArgs(ctx: Pick<SyncContext, 'staging' | 'dest' | 'excludes' | 'excludeFrom' | 'rsyncVerbose'>): string[] {
  const args = ['-a', '--delete'];
  if (ctx.rsyncVerbose !== '') args.push(ctx.rsyncVerbose);
  if (ctx.excludeFrom !== undefined) args.push('--exclude-from', path.join(ctx.staging, ctx.excludeFrom));
  for (const pattern of ctx.excludes) args.push('--exclude', pattern);
  args.push(`${ctx.staging}/`, `${ctx.dest}/`);
  return args;
}

export const rsyncStrategy: SyncStrategy = {
  name: 'rsync',
  createStaging: (_dest, workDir) => mkdtemp(path.join(workDir, 'staging-')),
  async sync(ctx) {
    // A missing or escaping exclude file is a clear error here rather than an rsync usage message.
    if (ctx.excludeFrom !== undefined) await readExcludeFrom(ctx.staging, ctx.excludeFrom);
    const args = rsyncArgs(ctx);
    ctx.log.info(`rsync ${args.join(' ')}`);
    try {
      await runProgram('rsync', args, { cwd: ctx.cwd, env: ctx.env, log: ctx.log, signal: ctx.signal, label: 'rsync' });
      return {};
    } catch (err) {
      if (err instanceof CommandError) throw new StretcherError(`sync to ${ctx.dest} failed: ${err.message}`);
      throw err;
    }
  },
};

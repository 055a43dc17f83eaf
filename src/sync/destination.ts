import { lstat, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { checkTrustedDir, nearestExisting } from '../host/trust.js';
import { checkDest } from '../manifest/dest-policy.js';
import { StretcherError } from '../shared/errors.js';

/**
 * What a strategy needs at dest: a directory it updates or replaces (rsync, mv), or a symlink it switches
 * (release). Checked before anything is downloaded, so that a dest stretcher cannot use is said at once,
 * not after `pre` has run.
 */
export type DestKind = 'directory' | 'symlink';

const STRATEGY_OF: Record<DestKind, string> = { directory: 'this strategy', symlink: 'the release strategy' };

/**
 * Refuses a dest that resolves to a system directory (through /proc/self/root, a symlinked parent...),
 * whose parent is missing or could be changed by another user, or that is not what the strategy needs.
 */
export async function checkDestination(dest: string, kind: DestKind, strategy: string): Promise<void> {
  const parent = path.dirname(dest);
  await checkResolvedPolicy(dest, kind);
  const parentStat = await lstat(parent).catch(() => undefined);
  if (!parentStat) throw new StretcherError('DEST_INVALID', `the parent directory of dest, ${parent}, does not exist (stretcher creates dest, not its parents: mkdir -p ${parent})`);
  if (!parentStat.isDirectory() && !parentStat.isSymbolicLink()) throw new StretcherError('DEST_INVALID', `the parent of dest, ${parent}, is not a directory`);
  await checkTrustedDir(parent, `to deploy to ${dest}`);
  const st = await lstat(dest).catch(() => undefined);
  if (!st) return;
  const name = strategy === 'release' ? STRATEGY_OF.symlink : `the ${strategy} strategy`;
  if (kind === 'directory') {
    if (st.isSymbolicLink()) {
      const target = await readlink(dest).catch(() => '?');
      throw new StretcherError(
        'DEST_INVALID',
        `dest ${dest} is a symlink (to ${target}); ${name} deploys into a real directory: point dest at the directory itself, or use sync_strategy: release, which switches a symlink`,
      );
    }
    if (!st.isDirectory())
      throw new StretcherError('DEST_INVALID', `dest ${dest} exists and is not a directory (${kindOf(st)}); ${name} deploys into a directory: move it away or point dest elsewhere`);
    return;
  }
  if (st.isDirectory()) return; // ReleaseStore.checkDest says how to migrate a real directory.
  if (!st.isSymbolicLink())
    throw new StretcherError('DEST_INVALID', `dest ${dest} is ${kindOf(st)}; ${name} needs dest to be a symlink it can switch, or absent: move it away or point dest elsewhere`);
}

/** The system-directory policy, applied to where dest really is once its existing part is resolved. */
async function checkResolvedPolicy(dest: string, kind: DestKind): Promise<void> {
  // A release dest is itself a symlink, switched by stretcher: its parent is what must resolve safely.
  const start = kind === 'symlink' ? path.dirname(dest) : dest;
  const existing = await nearestExisting(start);
  const resolvedExisting = await realpath(existing).catch((err: NodeJS.ErrnoException) => {
    throw new StretcherError('DEST_INVALID', `dest ${dest} cannot be resolved (${err.code ?? err.message} at ${existing}), so where it really is cannot be judged; refusing it`);
  });
  const real = path.join(resolvedExisting, path.relative(existing, start), kind === 'symlink' ? path.basename(dest) : '');
  const resolved = kind === 'symlink' ? real : real.replace(/\/$/, '') || '/';
  if (resolved === path.resolve(dest)) return;
  try {
    checkDest(resolved);
  } catch (err) {
    throw new StretcherError('DEST_INVALID', `dest ${dest} resolves to ${resolved}, ${(err as Error).message.replace(/^dest "[^"]*" /, '').replace(/^is /, 'which is ')}`);
  }
}

function kindOf(st: { isFile(): boolean; isSocket(): boolean; isFIFO(): boolean }): string {
  if (st.isFile()) return 'a regular file';
  if (st.isSocket()) return 'a socket';
  if (st.isFIFO()) return 'a FIFO';
  return 'not a directory';
}

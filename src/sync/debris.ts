import { lstat, mkdtemp, readdir, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { type SiblingKind, siblingPrefix } from '../host/paths.js';
import { untrustedBecause, UntrustedPathError } from '../host/trust.js';
import { isAlive } from '../host/pid.js';
import { removeTree } from '../host/remove-tree.js';
import { stagingIn } from './staging.js';
import { errorMessage } from '../shared/errors.js';
import type { Log } from '../shared/log.js';

/**
 * Where a deploy makes its own directories (staging, custody) so that what it puts at dest is renamed,
 * never copied across filesystems: beside dest, or, when dest is a mount point, inside it. dest's parent
 * has been checked (sync/destination.ts): nobody else can rename what is made there; a mount point holds
 * them only if it is trusted too.
 */
export async function workspaceFor(dest: string): Promise<string> {
  const parent = path.dirname(dest);
  const [d, p] = await Promise.all([lstat(dest).catch(() => undefined), lstat(parent)]);
  if (!d?.isDirectory() || d.dev === p.dev) return parent;
  const why = untrustedBecause(d);
  if (why)
    throw new UntrustedPathError(
      `refusing to deploy to ${dest}: it is a mount point and ${why}, so another user could swap what stretcher works on in it: make it root-owned and not writable by group or others (chown root ${dest} && chmod go-w ${dest})`,
    );
  return dest;
}

/** A private directory of this deploy's (a kind in host/paths.ts) in dest's workspace. */
export async function privateDir(dest: string, kind: SiblingKind): Promise<string> {
  return mkdtemp(path.join(await workspaceFor(dest), `${siblingPrefix(dest, kind)}${process.pid}-`));
}

/** A staging tree (staging.ts) on dest's filesystem, so that the finished tree can be renamed into place. */
export async function stageBeside(dest: string): Promise<string> {
  return stagingIn(path.join(await workspaceFor(dest), `${siblingPrefix(dest, 'new')}${process.pid}-`));
}

/**
 * A process killed mid-deploy leaves `.stretcher-new-*` trees beside dest, or, killed between the two
 * renames, dest missing and the old tree at `.stretcher-old-*`. The next run puts the old tree back and
 * removes the rest. Trees of live processes are left alone, and so is anything this user did not make.
 */
export async function recoverDebris(dest: string, log: Log): Promise<void> {
  const parent = path.dirname(dest);
  const names = await readdir(parent).catch(() => [] as string[]);
  for (const kind of ['old', 'new', 'custody', 'link'] as const) {
    const prefix = siblingPrefix(dest, kind);
    for (const name of names.filter((n) => n.startsWith(prefix))) {
      const pid = Number(name.slice(prefix.length).split('-')[0]);
      if (Number.isInteger(pid) && isAlive(pid)) continue;
      const abs = path.join(parent, name);
      if (kind === 'link') {
        // A symlink a killed release switch made, before renaming it over dest.
        const st = await lstat(abs).catch(() => undefined);
        if (st?.isSymbolicLink() && st.uid === (process.geteuid?.() ?? 0)) await unlink(abs).catch(() => {});
        continue;
      }
      if (!(await ours(abs))) continue;
      if (kind === 'old' && !(await lstat(dest).catch(() => undefined))) {
        await rename(abs, dest);
        log.warn(`mv: restored ${dest} from an interrupted deploy`);
        continue;
      }
      await removeDebris(abs, log);
    }
  }
}

/**
 * Removes the entries of `dir` whose name matches `pattern`, whose pid (its first group) is dead, and
 * which this user made. TMPDIR is shared: a name is no proof of who made a directory, its owner is. A
 * tree that cannot be removed is a warning; it never fails the deploy that found it.
 */
export async function removeDeadDebris(dir: string, pattern: RegExp, log: Log): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = pattern.exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    const abs = path.join(dir, name);
    if (await ours(abs)) await removeDebris(abs, log);
  }
}

/** A directory (not a symlink) that this user owns: what a deploy of this user left. */
async function ours(abs: string): Promise<boolean> {
  const st = await lstat(abs).catch(() => undefined);
  return st?.isDirectory() === true && st.uid === (process.geteuid?.() ?? 0);
}

async function removeDebris(abs: string, log: Log): Promise<void> {
  try {
    await removeTree(abs);
    log.info(`removed ${abs}, left by an interrupted deploy`);
  } catch (err) {
    log.warn(`cannot remove ${abs}, left by an interrupted deploy: ${errorMessage(err)}`);
  }
}

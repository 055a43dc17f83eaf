import { mkdtemp, readdir, rename, rm, lstat, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Log } from '../shared/log.js';
import { isAlive } from '../host/pid.js';
import { siblingPrefix } from '../host/paths.js';

/**
 * A private directory beside dest, on its filesystem, so that the finished tree can be renamed into place.
 * Undefined when dest's parent does not exist.
 */
export async function stageBeside(dest: string): Promise<string | undefined> {
  const parent = path.dirname(dest);
  if (!(await stat(parent).catch(() => undefined))?.isDirectory()) return undefined;
  return mkdtemp(path.join(parent, `${siblingPrefix(dest, 'new')}${process.pid}-`));
}

/**
 * A process killed mid-deploy leaves `.stretcher-new-*` trees beside dest, or, killed between the two
 * renames, dest missing and the old tree at `.stretcher-old-*`. The next run puts the old tree back and
 * removes the rest. Trees of live processes are left alone.
 */
export async function recoverDebris(dest: string, log: Log): Promise<void> {
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

/** Removes the entries of `dir` whose name matches `pattern` and whose pid (its first group) is dead. */
export async function removeDeadDebris(dir: string, pattern: RegExp, log: Log): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = pattern.exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    await rm(path.join(dir, name), { recursive: true, force: true });
    log.info(`removed ${path.join(dir, name)}, left by an interrupted deploy`);
  }
}

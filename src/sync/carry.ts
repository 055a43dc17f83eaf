import type { Stats } from 'node:fs';
import { chmod, lchown, lstat, mkdir, readdir, rename, utimes } from 'node:fs/promises';
import path from 'node:path';
import { isTrustedDir } from '../host/trust.js';
import { writable } from './writable.js';
import { StretcherError } from '../shared/errors.js';
import { isExcluded, type ExcludeRule } from './excludes.js';

/** Makes a directory of the new tree when the first excluded entry below it is found; false: it cannot. */
type EnsureDir = () => Promise<boolean>;

/**
 * Carries the excluded entries of an old tree (`*.pid`, `log/`, uploads) into the new one that replaces
 * it, as `rsync --delete` spares them: each is moved to the same place in the new tree, and the
 * directories on its way are made there with the old ones' modes, owners and times.
 *
 * The old tree may hold directories another user can write (an app that owns its `log/`). Such a user
 * could swap a subdirectory for a symlink while we walk, and make root move their file anywhere. So a
 * directory is only ever looked into where nobody else can change it: a subdirectory of one that others
 * can write is first moved into `custody`, a private directory of ours, and walked there. The new tree
 * must be private too (staging, or a directory in custody) until it is put in place.
 */
/** A private directory on dest's filesystem where what is taken out of dest is held, under unique names. */
export class Custody {
  private taken = 0;
  constructor(readonly dir: string) {}

  /** A new name in custody for something taken out of dest. */
  place(kind: string): string {
    return path.join(this.dir, `${kind}-${this.taken++}`);
  }
}

export class Carrier {
  /** Renames done, newest last, so that a failure can put every entry back. */
  private readonly moves: { from: string; to: string }[] = [];
  /** Directories made in the new tree, whose attributes are set once everything is in them. */
  private readonly made: { dir: string; old: Stats }[] = [];
  /** The new tree's own directories that entries were moved into: their times are put back after. */
  private readonly touched = new Map<string, Stats>();
  carried = 0;

  constructor(
    private readonly rules: readonly ExcludeRule[],
    private readonly custody: Custody,
    private readonly keepOwners: boolean,
  ) {}

  /**
   * Moves the excluded entries below `oldDir` (whose own place nobody else can change) to the same places
   * below `newDir`, an existing directory of the new tree. `rel` is their path in the tree, for the rules.
   */
  async carryInto(oldDir: string, newDir: string, rel: string): Promise<void> {
    if (this.rules.length === 0) return;
    await this.carry(oldDir, newDir, rel, async () => (await lstat(newDir)).isDirectory());
    // Deepest first: a read-only directory must not stop its own contents being fixed.
    for (const { dir, old } of this.made.reverse()) {
      if (this.keepOwners) await lchown(dir, old.uid, old.gid);
      await chmod(dir, old.mode & 0o7777);
      await utimes(dir, old.atime, old.mtime);
    }
    for (const [dir, st] of this.touched) {
      await chmod(dir, st.mode & 0o7777);
      await utimes(dir, st.atime, st.mtime);
    }
    this.made.length = 0;
    this.touched.clear();
  }

  /** Puts every moved entry back where it was (a failure before the new tree was put in place). */
  async undo(): Promise<void> {
    for (const m of this.moves.reverse()) await rename(m.to, m.from).catch(() => {});
    this.moves.length = 0;
  }

  private async carry(oldDir: string, newDir: string, rel: string, ensure: EnsureDir): Promise<void> {
    const stable = isTrustedDir(await lstat(oldDir));
    // What is moved out of it is moved by us, who own it when not root (others' directories are in custody).
    if (stable) writable(oldDir);
    for (const entry of await readdir(oldDir, { withFileTypes: true })) {
      const relEntry = rel ? `${rel}/${entry.name}` : entry.name;
      let from = path.join(oldDir, entry.name);
      const st = await lstat(from).catch(() => undefined);
      if (!st) continue;
      const to = path.join(newDir, entry.name);
      if (isExcluded(this.rules, relEntry, st.isDirectory())) {
        if (!(await ensure())) return;
        if (await lstat(to).catch(() => undefined)) {
          // The archive has, not excluded, a file where dest keeps an excluded "dir/". rsync deletes that
          // directory to make way, unless something excluded in it is kept, and then it cannot either.
          if (st.isDirectory()) await this.carry(await this.stableCopy(from, stable), to, relEntry, () => Promise.reject(conflict(relEntry)));
          continue;
        }
        await this.touch(newDir);
        writable(newDir);
        await this.move(from, to);
        this.carried++;
        continue;
      }
      if (!st.isDirectory()) continue;
      from = await this.stableCopy(from, stable);
      const old = await lstat(from);
      if (!old.isDirectory()) continue;
      await this.carry(from, to, relEntry, this.ensureBelow(ensure, to, old, relEntry));
    }
  }

  /**
   * A directory to walk: `dir` itself when its parent is stable; otherwise, since another user could swap
   * it while we walk, it is first moved somewhere they cannot reach.
   */
  private async stableCopy(dir: string, parentStable: boolean): Promise<string> {
    if (parentStable) return dir;
    const held = this.custody.place('held');
    await this.move(dir, held);
    return held;
  }

  /** Makes `dir` (after its parent) the first time it is needed; throws when the new tree has a file there. */
  private ensureBelow(parent: EnsureDir, dir: string, old: Stats, rel: string): EnsureDir {
    let ready: Promise<boolean> | undefined;
    return () => {
      ready ??= (async () => {
        if (!(await parent())) return false;
        const st = await lstat(dir).catch(() => undefined);
        if (st?.isDirectory()) return true;
        // rsync fails here too ("could not make way"): deleting the operator's excluded files is worse.
        if (st) throw conflict(rel);
        await this.touch(path.dirname(dir));
        await mkdir(dir, { mode: 0o700 });
        this.made.push({ dir, old });
        return true;
      })();
      return ready;
    };
  }

  /** Notes the times of a directory of the new tree before something is put in it, to give them back. */
  private async touch(dir: string): Promise<void> {
    if (!this.touched.has(dir) && !this.made.some((m) => m.dir === dir)) this.touched.set(dir, await lstat(dir));
  }

  private async move(from: string, to: string): Promise<void> {
    await rename(from, to);
    this.moves.push({ from, to });
  }
}

/** The archive puts a file where dest keeps an excluded entry, or a directory holding some. */
export function conflict(rel: string): StretcherError {
  return new StretcherError('SYNC_FAILED', `cannot replace ${rel} in dest with the archive's entry: excluded entries are kept there`);
}

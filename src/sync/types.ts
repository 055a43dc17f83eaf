import type { RunContext } from '../shared/context.js';
import type { Compared } from '../shared/kept.js';
import type { Log } from '../shared/log.js';
import type { SyncStrategyName } from '../manifest/types.js';

export interface SyncContext extends RunContext {
  /**
   * The unpacked archive, in a holder nobody else can enter (staging.ts): the archive may give other users
   * directories inside it (or the tree itself, with a `./` entry), and they must not reach those while
   * stretcher still works by path in them (a directory swapped for a symlink would turn a chmod, a carry or
   * a prune into one outside). A strategy gives it destMode as it puts it in place (publish.ts), or gives
   * dest destMode itself.
   */
  staging: string;
  /** dest_mode: the mode of dest itself once synced. */
  destMode: number;
  dest: string;
  excludes: readonly string[];
  excludeFrom?: string;
  /** What unpacking found comparing with dest (only for a strategy with reusesDest). */
  compared?: Compared;
}

/** What a strategy decided before anything was downloaded. */
export interface Prepared {
  /** Set when there is nothing to do (the release strategy's "already current"); the reason is logged. */
  alreadyCurrent?: string;
  /** Variables for hook commands (STRETCHER_RELEASE_DIR, ...). */
  env?: Record<string, string>;
  /** release strategy: the release this deploy makes current. */
  release?: string;
}

/** After a failed post command: whether dest went back to what it was, and (release) to which release. */
export interface PostFailure {
  rolledBack: boolean;
  release?: string;
}

export interface Synced {
  /** What this strategy does once the post commands succeeded (release: mark it good, retention). */
  afterPostSuccess?(): Promise<void>;
  /**
   * What this strategy does when a post command or the health gate (`failed`: which, for the log) fails
   * after the sync; absent: nothing (dest stays new).
   */
  afterPostFailure?(log: Log, failed: 'post' | 'health check'): Promise<PostFailure>;
  /**
   * Trees nobody needs any more (mv: the previous dest), being removed while post runs: nothing can be
   * done with them, and deleting 10,000 files takes as long as a quick post. Awaited before the deploy
   * reports, whatever post did (a signal during the wait fails the deploy); it never rejects (a tree it
   * cannot remove is a warning).
   */
  leftovers?: Promise<void>;
}

/** One deploy's way of putting the unpacked tree at dest. An instance serves a single deploy. */
export interface SyncStrategy {
  name: SyncStrategyName;
  /**
   * Set when this strategy's sync keeps dest's files that the archive has byte for byte (shared/kept.ts), so
   * unpacking may compare with dest and leave those out of staging.
   */
  reusesDest?: true;
  /**
   * Set when each name of a hard link in the archive must become a file of its own, as rsync -a (without -H)
   * makes them; otherwise they stay links to one inode, as tar makes them.
   */
  separateHardLinks?: true;
  prepare?(): Promise<Prepared>;
  /**
   * The deploy failed before sync (its staging is gone): undoes what prepare made for it, so that a failed
   * first deploy leaves nothing (release: the releases directory it made, if still empty).
   */
  abandon?(): Promise<void>;
  /**
   * A new, empty staging tree to unpack into, in a private holder of its own (staging.ts), which the deploy
   * removes with it. Where it lives is the strategy's choice: mv and release need it on dest's filesystem so
   * that the final rename never crosses devices.
   */
  createStaging(dest: string, workDir: string): Promise<string>;
  /** Makes dest hold the staged tree. */
  sync(ctx: SyncContext): Promise<Synced>;
}

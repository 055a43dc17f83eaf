import type { Log } from '../shared/log.js';
import type { SyncStrategyName } from '../manifest/types.js';

export interface SyncContext {
  /** The unpacked archive, dest_mode already applied to it. */
  staging: string;
  dest: string;
  excludes: readonly string[];
  excludeFrom?: string;
  rsyncVerbose: string;
  log: Log;
  signal: AbortSignal;
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/** What a strategy decided before anything was downloaded. */
export interface Prepared {
  /** Set when there is nothing to do (the release strategy's "already current"); the reason is logged. */
  alreadyCurrent?: string;
  /** Variables for hook commands (STRETCHER_RELEASE_DIR, ...). */
  env?: Record<string, string>;
  /** release strategy: the release this deploy makes current, and the one current before it. */
  release?: string;
  previous?: string;
}

export interface SyncResult {
  /** Puts dest back as it was before this sync; returns what it went back to, for the log. */
  rollback?: () => Promise<string>;
}

/** One deploy's way of putting the unpacked tree at dest. An instance serves a single deploy. */
export interface SyncStrategy {
  name: SyncStrategyName;
  prepare?(): Promise<Prepared>;
  /**
   * A new, empty directory to unpack into. Where it lives is the strategy's choice: mv and release need it
   * on dest's filesystem so that the final rename never crosses devices.
   */
  createStaging(dest: string, workDir: string): Promise<string>;
  /** Makes dest hold the staged tree. */
  sync(ctx: SyncContext): Promise<SyncResult>;
}

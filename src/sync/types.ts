import type { Log } from '../log.js';
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

export interface SyncStrategy {
  name: SyncStrategyName;
  /**
   * A new, empty directory to unpack into. Where it lives is the strategy's choice: mv needs it on dest's
   * filesystem so that the final rename never crosses devices.
   */
  createStaging(dest: string, workDir: string): Promise<string>;
  /** Makes dest hold the staged tree. */
  sync(ctx: SyncContext): Promise<void>;
}

import type { Log } from '../shared/log.js';
import type { Manifest } from '../manifest/types.js';
import { mvStrategy } from './mv.js';
import { releaseStrategy, type ReleaseOptions } from './release/strategy.js';
import { rsyncStrategy, type RsyncOptions } from './rsync.js';
import type { SyncStrategy } from './types.js';

export type { PostFailure, Prepared, SyncContext, Synced, SyncStrategy } from './types.js';

/** Options that belong to one strategy, set from the command line. */
export interface StrategyOptions {
  rsync: RsyncOptions;
  release: ReleaseOptions;
}

/** The strategy instance for one deploy of a manifest that has something to unpack and a dest. */
export function strategyFor(manifest: Manifest & { dest: string; identity: string }, options: StrategyOptions, log: Log): SyncStrategy {
  switch (manifest.syncStrategy) {
    case 'rsync':
      return rsyncStrategy(manifest.dest, options.rsync);
    case 'mv':
      return mvStrategy(manifest.dest);
    case 'release':
      return releaseStrategy(manifest, options.release, log);
  }
}

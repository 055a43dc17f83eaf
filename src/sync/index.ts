import type { Log } from '../shared/log.js';
import type { Manifest } from '../manifest/types.js';
import { mvStrategy } from './mv.js';
import { releaseStrategy } from './release/strategy.js';
import { rsyncStrategy } from './rsync.js';
import type { SyncStrategy } from './types.js';

export type { Prepared, SyncContext, SyncResult, SyncStrategy } from './types.js';

/** The strategy instance for one deploy of a manifest that has something to unpack and a dest. */
export function strategyFor(manifest: Manifest & { dest: string; identity: string }, opts: { force: boolean; log: Log }): SyncStrategy {
  switch (manifest.syncStrategy) {
    case 'rsync':
      return rsyncStrategy;
    case 'mv':
      return mvStrategy;
    case 'release':
      return releaseStrategy(manifest, opts);
  }
}

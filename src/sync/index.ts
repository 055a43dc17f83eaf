import type { SyncStrategyName } from '../manifest/types.js';
import { mvStrategy } from './mv.js';
import { rsyncStrategy } from './rsync.js';
import type { SyncStrategy } from './types.js';

export type { SyncContext, SyncStrategy } from './types.js';

const STRATEGIES: Record<SyncStrategyName, SyncStrategy> = { rsync: rsyncStrategy, mv: mvStrategy };

export function strategyFor(name: SyncStrategyName): SyncStrategy {
  return STRATEGIES[name];
}

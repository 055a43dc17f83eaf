import type { Checksum } from '../checksum.js';

export type SyncStrategyName = 'rsync' | 'mv' | 'release';

export interface Commands {
  pre: string[];
  post: string[];
  success: string[];
  failure: string[];
}

/** A validated manifest; URLs are absolute, the checksum parsed, defaults applied. */
export interface Manifest {
  /** Where the manifest came from (as given, credentials included: redact before printing). */
  url: string;
  /** Absolute archive URL; undefined for a commands-only deploy. */
  src?: string;
  checksum?: Checksum;
  dest?: string;
  destMode: number;
  syncStrategy: SyncStrategyName;
  excludes: string[];
  excludeFrom?: string;
  /** release strategy: where releases live (default: releases/ beside dest). */
  releasesDir?: string;
  keepReleases: number;
  rollbackOnFailure: boolean;
  commands: Commands;
}

/** The raw key/value shape the schema accepts, before defaults. */
export interface RawManifest {
  src?: string;
  checksum?: string;
  dest?: string;
  dest_mode?: number;
  sync_strategy?: SyncStrategyName;
  excludes?: string[];
  exclude_from?: string;
  releases_dir?: string;
  keep_releases?: number;
  rollback_on_failure?: boolean;
  commands?: Partial<Commands>;
}

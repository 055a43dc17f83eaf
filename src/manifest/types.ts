import type { Location } from '../shared/location.js';
import type { Checksum } from '../transfer/checksum.js';
import type { GitSource } from '../transfer/git/source.js';

export type SyncStrategyName = 'rsync' | 'mv' | 'release';

export interface Commands {
  pre: string[];
  post: string[];
  success: string[];
  failure: string[];
}

/** One archive to download, verify and unpack. */
export interface FileArchive {
  kind: 'file';
  src: Location;
  checksum: Checksum;
}

/**
 * A git source: the tree of a commit. `checksum` is the commit id the ref must resolve to; without one
 * the deploy takes whatever the ref points at, and the deploy fills it in once the commit is fetched.
 */
export interface GitArchive {
  kind: 'git';
  src: GitSource;
  checksum?: Checksum;
}

export type Archive = FileArchive | GitArchive;

/** A validated manifest; URLs are absolute, the checksum parsed, defaults applied. */
export interface Manifest {
  /** Where the manifest came from, as it was asked for (before redirects). */
  url: Location;
  /** The archive; undefined for a commands-only deploy. */
  src?: Location | GitSource;
  checksum?: Checksum;
  /** What to unpack, in order: `src` alone, or the `layers`. Empty for a commands-only deploy. */
  archives: Archive[];
  /**
   * Hex digits naming this version: the checksum for a single src; for layers, a sha256 over their
   * checksums. The release strategy and the state records use it.
   */
  identity?: string;
  dest?: string;
  destMode: number;
  syncStrategy: SyncStrategyName;
  excludes: string[];
  excludeFrom?: string;
  /** release strategy: where releases live (default: releases/ beside dest). */
  releasesDir?: string;
  keepReleases: number;
  rollbackOnFailure: boolean;
  /** How long each command may run (command_timeout); undefined: --command-timeout decides. 0: no limit. */
  commandTimeoutMs?: number;
  /** The health gate checked after post; undefined: none. */
  health?: HealthCheck;
  /** What a signature is bound to (signature.ts): the URL it must be deployed from, its order, its end. */
  binding: Binding;
  commands: Commands;
}

/** `health`: what makes a host healthy after a deploy, and how long to wait for it. */
export interface HealthCheck {
  /** sh -c COMMAND; exit 0 is healthy. */
  command?: string;
  /** GET URL; a 2xx is healthy. */
  url?: string;
  timeoutMs: number;
  intervalMs: number;
}

export interface Binding {
  manifestUrl?: string;
  serial?: number;
  expires?: Date;
}

/** The raw key/value shape the schema accepts, before defaults. */
export interface RawManifest {
  src?: string;
  checksum?: string;
  layers?: { src: string; checksum?: string }[];
  dest?: string;
  dest_mode?: number;
  sync_strategy?: SyncStrategyName;
  excludes?: string[];
  exclude_from?: string;
  releases_dir?: string;
  keep_releases?: number;
  rollback_on_failure?: boolean;
  command_timeout?: string;
  health?: { command?: string; url?: string; timeout?: string | number; interval?: string | number };
  manifest_url?: string;
  serial?: number;
  expires?: string;
  commands?: Partial<Commands>;
}

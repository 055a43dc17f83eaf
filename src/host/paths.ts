import { createHash } from 'node:crypto';
import path from 'node:path';

/**
 * The names of everything stretcher puts on disk, in one place: what a deploy makes beside dest, in
 * TMPDIR and in releases_dir, and the files of the state directory. Debris left by a killed process is
 * recognised by these names (and the pid in them).
 */

/** A file name for a dest: readable prefix, hash for uniqueness. */
export function destKey(dest: string): string {
  const readable = dest
    .replace(/^\/+/, '')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .slice(0, 60);
  return `${readable}-${createHash('sha256').update(dest).digest('hex').slice(0, 12)}`;
}

export function urlKey(url: string): string {
  return createHash('sha256').update(url).digest('hex').slice(0, 16);
}

/**
 * What a deploy makes beside dest: its staging tree (new), the tree it replaces (old), a symlink being
 * switched (link), and what the sync takes out of dest on the way (custody).
 */
export type SiblingKind = 'new' | 'old' | 'link' | 'custody';

/** `.app.stretcher-new-`: the prefix of dest's siblings of one kind; the pid and a random suffix follow. */
export function siblingPrefix(dest: string, kind: SiblingKind): string {
  return `.${path.basename(dest)}.stretcher-${kind}-`;
}

/** `.<release id>.stretcher-new-<pid>-`: a release being unpacked, hidden in releases_dir. */
export function releaseStagingPrefix(id: string): string {
  return `.${id}.stretcher-new-${process.pid}-`;
}

/** Staging trees (`.<name>.stretcher-new-<pid>-...`) left by deploys that were killed. */
export const STAGING_DEBRIS = /^\..*\.stretcher-new-(\d+)-/;

/** `stretcher-<pid>-`: a deploy's work directory in TMPDIR (downloaded layers, a zip's spool). */
export function workDirPrefix(): string {
  return `stretcher-${process.pid}-`;
}

/** Work directories in TMPDIR (`stretcher-<pid>-...`) left by deploys that were killed. */
export const WORK_DEBRIS = /^stretcher-(\d+)-/;

/** The state directory's layout. */
export const STATE = {
  deploys: 'deploys',
  watch: 'watch',
  locks: 'locks',
  /** Bare caches of git sources, one a repository (`<hash of its URL>.git`). */
  git: 'git',
  consulEvents: 'consul-events.json',
  deployRecord: (dest: string): string => path.join('deploys', `${destKey(dest)}.json`),
  /** The last deploy's (or rollback's) log, as its success/failure commands received it. */
  deployLog: (dest: string): string => path.join('deploys', `${destKey(dest)}.log`),
  watchRecord: (url: string): string => path.join('watch', `${urlKey(url)}.json`),
} as const;

/** The lock file of a dest, in a lock directory. */
export function lockFile(dir: string, dest: string): string {
  return path.join(dir, `${destKey(dest)}.lock`);
}

/** Where locks go when the state directory is unusable: per user, in TMPDIR. */
export function fallbackLockDir(tmp: string): string {
  return path.join(tmp, `stretcher-locks-${process.getuid?.() ?? 0}`);
}

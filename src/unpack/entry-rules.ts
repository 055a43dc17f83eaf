import { lchown, lstat, lutimes, mkdir, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { StretcherError } from '../shared/errors.js';

/**
 * Safety rules shared by every archive format: where an entry may go, and how symlinks are made so that
 * nothing in an archive can be written through one.
 */
export class HostileArchiveError extends StretcherError {
  override name = 'HostileArchiveError';
  constructor(message: string) {
    super('ARCHIVE_HOSTILE', message);
  }
}

export interface DeferredLink {
  rel: string;
  target: string;
  mtime?: Date;
  uid?: number;
  gid?: number;
}

/** A path that is not already relative and normal: a leading or trailing /, //, or a . or .. component. */
const NOT_PLAIN = /^\/|\/$|\/\/|(^|\/)\.\.?(\/|$)/;

/** The entry's path relative to the staging root ("" for the root itself), or undefined if it would leave it. */
export function safeRelative(entryPath: string): string | undefined {
  // Most entries are already in that form: checked in one pass, they need no splitting (10,000 entries).
  if (entryPath !== '' && !NOT_PLAIN.test(entryPath)) return entryPath;
  const parts: string[] = [];
  for (const part of entryPath.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return undefined;
    parts.push(part);
  }
  return parts.join('/');
}

export async function createDeferredLink(staging: string, link: DeferredLink, isRoot: boolean): Promise<void> {
  const parentRel = path.posix.dirname(link.rel);
  await ensureRealDir(staging, parentRel === '.' ? '' : parentRel);
  const abs = path.join(staging, link.rel);
  try {
    await symlink(link.target, abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new HostileArchiveError(`refusing the archive: symlink ${JSON.stringify(link.rel)} collides with an entry the archive puts inside or at that path`);
    }
    throw err;
  }
  if (isRoot && link.uid !== undefined && link.gid !== undefined) await lchown(abs, link.uid, link.gid);
  if (link.mtime) await lutimes(abs, link.mtime, link.mtime);
}

/**
 * What, if anything, reaching rel from the staging root passes through that is not a real directory (a
 * symlink an earlier layer left, say): lstat checks only the last component, and link() follows the others.
 * Checks without creating anything, unlike ensureRealDir.
 */
export async function obstacleOnPath(staging: string, rel: string): Promise<'a symlink' | 'a non-directory' | undefined> {
  let current = staging;
  for (const part of rel.split('/').slice(0, -1)) {
    current = path.join(current, part);
    const st = await lstat(current).catch(() => undefined);
    if (!st) return undefined;
    if (!st.isDirectory()) return st.isSymbolicLink() ? 'a symlink' : 'a non-directory';
  }
  return undefined;
}

/**
 * mkdir -p that refuses to pass through a symlink: no deferred link may be written through another.
 * `replace`: rel itself is an archive's directory entry, which replaces a file or symlink an earlier layer
 * left at that path (its parents must still be real directories).
 */
export async function ensureRealDir(staging: string, rel: string, replace = false): Promise<void> {
  let current = staging;
  const parts = rel === '' ? [] : rel.split('/');
  for (const [i, part] of parts.entries()) {
    current = path.join(current, part);
    let st = await lstat(current).catch(() => undefined);
    if (st && !st.isDirectory() && replace && i === parts.length - 1) {
      await unlink(current);
      st = undefined;
    }
    if (!st) {
      await mkdir(current, { mode: 0o755 });
      continue;
    }
    if (!st.isDirectory()) {
      throw new HostileArchiveError(`refusing the archive: ${JSON.stringify(rel)} passes through ${st.isSymbolicLink() ? 'a symlink' : 'a non-directory'}`);
    }
  }
}

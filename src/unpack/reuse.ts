import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import path from 'node:path';
import { type Compared, type KeptFile, KeptFiles, StaleKeptError, unchanged } from '../shared/kept.js';
import type { CounterpartPolicy } from './writer/counterpart.js';
import { completeEntryFile, copyStart, createEntryFile } from './writer/file.js';

/**
 * One deploy's comparing with dest while unpacking (writer/counterpart.ts): set by the rsync strategy's
 * merge, which keeps dest's file for each KeptFile. Shared by every layer unpacked into the same staging.
 */
export interface Reuse {
  policy: CounterpartPolicy;
  /** Set from the second layer on: staging may already hold a file at a path being compared. */
  layered: boolean;
  /**
   * What dest already has, by path. A later entry at the same path (a file, directory or link of a later
   * entry or layer) is in staging then, and the merge takes staging's.
   */
  kept: KeptFiles;
  /** Cleared when a file was staged without comparing (a zip, a git layer, a fractional mtime). */
  allCompared: boolean;
}

export function reuseFor(dest: string): Reuse {
  const euid = process.geteuid?.() ?? -1;
  return { policy: { root: dest, keepOwners: euid === 0, euid }, layered: false, kept: new KeptFiles(), allCompared: true };
}

export function comparedOf(reuse: Reuse): Compared {
  return { kept: reuse.kept, stagedDiffer: reuse.allCompared };
}

/**
 * A hard link of the archive points to a file dest already had (so it was never staged): the file is
 * staged after all, from dest's bytes, which must still be the ones compared (else StaleKeptError).
 */
export function materialize(k: KeptFile, staging: string, policy: CounterpartPolicy): void {
  // The deploy unpacks again in full (deploy.ts stage()), as when the merge finds a kept file changed.
  const changed = () => new StaleKeptError(k, policy.root);
  if (k.changed) throw changed();
  let from: number;
  try {
    from = openSync(path.join(policy.root, k.rel), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    // Gone, or leased since it was compared (EWOULDBLOCK: its owner's lease, which O_NONBLOCK does not wait for).
    throw changed();
  }
  try {
    if (!sameInode(k, from)) throw changed();
    const fd = createEntryFile({ rel: k.rel, abs: path.join(staging, k.rel), mode: k.mode });
    const entry = { rel: k.rel, abs: path.join(staging, k.rel), mode: k.mode, mtime: k.mtime, atime: k.atime, ...(policy.keepOwners ? { owner: { uid: k.uid, gid: k.gid } } : {}) };
    try {
      // No further than the size compared: a file its owner extends meanwhile (truncate -s 1T, sparse) is
      // not copied into staging to its new end, only found changed below.
      copyStart(from, fd, k.size, Buffer.allocUnsafe(256 * 1024));
    } finally {
      completeEntryFile(fd, entry);
    }
    if (!sameInode(k, from)) throw changed();
  } finally {
    closeSync(from);
  }
}

function sameInode(k: KeptFile, fd: number): boolean {
  const st = fstatSync(fd);
  return st.isFile() && unchanged(st, k);
}

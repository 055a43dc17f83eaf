import {
  chmodSync,
  closeSync,
  constants,
  type Dirent,
  fstatSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  renameSync,
  rmdirSync,
  type Stats,
  unlinkSync,
  utimesSync,
} from 'node:fs';
import { lstat, mkdir, readdir, rename, rmdir, unlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { removeTree } from '../host/remove-tree.js';
import { isTrustedDir, untrustedBecause, UntrustedPathError } from '../host/trust.js';
import { type Compared, type KeptFile, KeptFiles, keepableInPlace } from '../shared/kept.js';
import type { Log } from '../shared/log.js';
import { Scavenger } from '../shared/scavenger.js';
import { parentOf } from '../shared/tree-path.js';
import { Carrier, Custody, conflict } from './carry.js';
import { writable } from './writable.js';
import { isExcluded, type ExcludeRule } from './excludes.js';
import { verifyKept } from './kept.js';

export interface MergeOptions {
  rules: readonly ExcludeRule[];
  log: Log;
  /** A private directory on dest's filesystem, for what is taken out of dest on the way. */
  custody: string;
  /** Running as root: owners come from the staged tree, as rsync -a gives them. */
  keepOwners: boolean;
  /** dest's own mode (dest_mode); absent: staging's, as rsync -a gives it. Staging itself stays private (types.ts). */
  rootMode?: number;
  /** Names at dest's top that are not part of it (this deploy's own directories, in a mount point). */
  ignore?: ReadonlySet<string>;
  /**
   * What unpacking found comparing with dest: the files dest already had byte for byte are not in staging,
   * and dest's stay, with the archive's attributes (checked first: kept.ts, StaleKeptError).
   */
  compared?: Compared;
}

export interface Merged {
  /** Entries that were new, replaced, removed, or already as the archive has them (content compared). */
  added: number;
  replaced: number;
  removed: number;
  unchanged: number;
  /** Of the unchanged, those found so while unpacking (never staged). */
  comparedEarlier: number;
}

/** The attributes rsync -a gives an entry, captured from staging before anything is moved out of it. */
interface Attributes {
  mode: number;
  uid: number;
  gid: number;
  atime: Date;
  mtime: Date;
}

/**
 * Makes `dest` exactly what `rsync -a --delete --checksum [--exclude ...] staging/ dest/` makes it, by
 * renaming the staged entries into it instead of copying them: a file whose content is already in dest
 * stays (its attributes updated), every other one is replaced atomically by a rename, as rsync's
 * temp-and-rename does; what the archive does not have goes, unless it is excluded. Content is compared,
 * not size and mtime, so a reproducible build's changed file is never skipped.
 *
 * Safety: dest's parent is trusted (sync/destination.ts). Every directory merged into is one nobody else
 * can change; a directory of dest that another user can write is never walked into: it is replaced
 * whole, its excluded entries carried into its replacement in private first (carry.ts).
 */
export async function mergeInto(staging: string, dest: string, opts: MergeOptions): Promise<Merged> {
  // What the merge relies on without a staged copy, and the one way it can fail half-way through, are
  // checked first, while dest is still as it was.
  const kept = opts.compared?.kept ?? new KeptFiles();
  if (kept.size) verifyKept(kept, dest);
  const blocked = await findConflict(staging, dest, '', opts.rules);
  if (blocked) throw conflict(blocked);
  const merger = new Merger(opts, kept);
  const root = attributesOf(await lstat(staging));
  if (opts.rootMode !== undefined) root.mode = (root.mode & ~0o7777) | opts.rootMode;
  const destStat = await lstat(dest);
  if (isTrustedDir(destStat)) await merger.mergeDir(staging, dest, '', opts.ignore);
  else {
    await merger.replaceDir(staging, dest, '').catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EBUSY') throw err;
      throw new UntrustedPathError(
        `refusing to sync into ${dest}: it ${untrustedBecause(destStat)}, so it must be replaced whole, and it cannot be (it is a mount point): make it root-owned and not writable by group or others (chown root ${dest} && chmod go-w ${dest})`,
      );
    });
  }
  // rsync -a with staging/ gives dest itself staging's attributes (dest_mode among them).
  merger.apply(dest, root);
  return merger.counts;
}

class Merger {
  readonly counts: Merged = { added: 0, replaced: 0, removed: 0, unchanged: 0, comparedEarlier: 0 };
  private readonly custody: Custody;
  /** The kept files (their paths) by the directory they are in, and every directory with one below it. */
  private readonly keptIn = new Map<string, string[]>();
  private readonly keptBelow = new Set<string>();
  /** Each entry's Stats and Dirents are garbage at once (kept.ts: verifyKept). */
  private readonly scavenger = Scavenger.perFile();

  constructor(
    private readonly opts: MergeOptions,
    private readonly kept: KeptFiles,
  ) {
    this.custody = new Custody(opts.custody);
    for (const rel of kept.rels()) {
      const dir = parentOf(rel);
      const here = this.keptIn.get(dir);
      if (here) here.push(rel);
      else this.keptIn.set(dir, [rel]);
      for (let d = dir; !this.keptBelow.has(d); d = parentOf(d)) {
        this.keptBelow.add(d);
        if (d === '') break;
      }
    }
  }

  private excluded(rel: string, isDir: boolean): boolean {
    return this.opts.rules.length > 0 && isExcluded(this.opts.rules, rel, isDir);
  }

  /**
   * Merges staged `s` into `d`, a directory nobody else can change; then d gets s's attributes.
   *
   * The common steps are synchronous calls: a tree of 10,000 files takes some 100,000 of them, and each
   * round trip through libuv's thread pool cost about 45 us of waiting on this 2-core machine (7.2 s for
   * the benchmark's update, against 0.4 s for the same calls made directly). The event loop gets a turn
   * before each directory, so a signal still stops a merge of a large tree promptly.
   */
  async mergeDir(s: string, d: string, rel: string, ignore?: ReadonlySet<string>): Promise<void> {
    await nextTurn();
    writable(s);
    this.scavenger.discarded(this.keptIn.get(rel)?.length ?? 0);
    writable(d);
    // What the archive has but excludes is not sent: for dest, as if the archive did not have it.
    const staged = new Map(
      readdirSync(s, { withFileTypes: true })
        .filter((e) => !this.excluded(join(rel, e.name), e.isDirectory()))
        .map((e) => [e.name, e] as const),
    );
    const kept = new Map((this.keptIn.get(rel) ?? []).map((k) => [path.posix.basename(k), k] as const));
    for (const [name, k] of kept) if (staged.has(name) || this.excluded(k, false)) kept.delete(name);
    const there = new Map<string, Dirent>();
    for (const e of readdirSync(d, { withFileTypes: true })) {
      there.set(e.name, e);
      if (staged.has(e.name) || kept.has(e.name) || ignore?.has(e.name)) continue;
      const relEntry = join(rel, e.name);
      if (!this.excluded(relEntry, e.isDirectory())) await this.remove(d, e, relEntry);
    }
    const differs = this.opts.compared?.stagedDiffer === true;
    for (const [name, e] of staged) {
      const relEntry = join(rel, name);
      const from = path.join(s, name);
      const to = path.join(d, name);
      const old = there.get(name);
      if (differs && e.isFile() && !old?.isDirectory()) {
        // Compared with dest's while unpacking, and different (or dest has none): nothing to look at, as the
        // branches below would decide. d is a directory nobody else can change, so its listing still holds.
        renameSync(from, to);
        if (old) this.counts.replaced++;
        else this.counts.added++;
        continue;
      }
      const src = lstatSync(from);
      const dst = lstatSync(to, { throwIfNoEntry: false });
      if (!dst) {
        if (src.isDirectory()) await this.prune(from, relEntry);
        renameSync(from, to);
        this.counts.added++;
      } else if (src.isDirectory() && dst.isDirectory()) {
        const attributes = attributesOf(src);
        if (isTrustedDir(dst)) {
          await this.mergeDir(from, to, relEntry);
          // Emptied, unless it holds what is excluded: gone now, so removing staging starts no process.
          tryRmdir(from);
        } else await this.replaceDir(from, to, relEntry);
        this.apply(to, attributes);
      } else if (this.keepable(src, dst) && !(differs && src.isFile()) && this.same(from, src, to, dst)) {
        this.apply(to, attributesOf(src), src.isSymbolicLink(), dst);
        this.counts.unchanged++;
      } else {
        // A rename replaces a file or symlink atomically, but not a directory with a file, nor the reverse.
        if (dst.isDirectory()) await this.removeForReplacement(d, e, relEntry);
        else if (src.isDirectory()) unlinkSync(to);
        if (src.isDirectory()) await this.prune(from, relEntry);
        renameSync(from, to);
        this.counts.replaced++;
      }
    }
    for (const [name, k] of kept) this.keep(path.join(d, name), k);
  }

  /**
   * dest's file that unpacking found equal to the archive's: it stays, with the archive's attributes. As
   * verifyKept() found it a moment ago, so it is not looked at again; unless it has other names, which this
   * merge may have given other times already (two kept names of one inode: the last one's, as rsync).
   */
  private keep(to: string, rel: string): void {
    const k = this.kept.get(rel) as KeptFile;
    const attributes = { mode: k.mode, uid: k.uid, gid: k.gid, atime: new Date(k.atime * 1000), mtime: new Date(k.mtime * 1000) };
    const known = this.kept.current(k.rel);
    this.apply(to, attributes, false, known && known.nlink === 1 ? known : undefined);
    this.counts.unchanged++;
    this.counts.comparedEarlier++;
  }

  /**
   * Replaces `d`, a directory another user can write, with staged `s` whole: d goes into custody (its
   * place, in a directory nobody else can change, cannot be swapped), its excluded entries are carried
   * into s while s is still private, and s is renamed into d's place.
   */
  async replaceDir(s: string, d: string, rel: string): Promise<void> {
    // Files dest already had are not in s: replacing d with s would lose them (verifyKept() rules this out).
    if (this.keptBelow.has(rel)) throw new Error(`${d} holds files found equal while unpacking, and is no longer one only root can change`);
    // What the archive has but excludes is not deployed: taken out of the staged tree while it is private.
    await this.prune(s, rel);
    const held = this.custody.place('replaced');
    await rename(d, held);
    const carrier = new Carrier(this.opts.rules, this.custody, this.opts.keepOwners);
    try {
      await carrier.carryInto(held, s, rel);
      await rename(s, d);
    } catch (err) {
      await carrier.undo();
      await rename(held, d).catch(() => {});
      throw err;
    }
    this.counts.replaced++;
  }

  /** Removes the excluded entries of a staged (private) tree whose path in the tree is `rel`. */
  private async prune(s: string, rel: string): Promise<void> {
    if (this.opts.rules.length === 0) return;
    const before = await lstat(s);
    writable(s);
    let removed = false;
    for (const e of await readdir(s, { withFileTypes: true })) {
      const relEntry = join(rel, e.name);
      const abs = path.join(s, e.name);
      if (this.excluded(relEntry, e.isDirectory())) {
        await removeTree(abs);
        removed = true;
      } else if (e.isDirectory()) await this.prune(abs, relEntry);
    }
    // The directory keeps the archive's mtime, as rsync gives it.
    if (removed) await utimes(s, before.atime, before.mtime);
  }

  /** Removes an entry of dest that the archive does not have, keeping what is excluded below it. */
  private async remove(d: string, e: Dirent, rel: string): Promise<void> {
    const abs = path.join(d, e.name);
    const st = await lstat(abs);
    this.counts.removed++;
    if (!st.isDirectory()) return unlink(abs);
    if (this.opts.rules.length === 0) return removeTree(abs);
    if (isTrustedDir(st)) {
      writable(abs);
      for (const child of await readdir(abs, { withFileTypes: true })) {
        const relChild = join(rel, child.name);
        if (!this.excluded(relChild, child.isDirectory())) await this.remove(abs, child, relChild);
      }
      // Kept when something excluded is still in it, as rsync keeps it.
      await rmdir(abs).catch(() => {});
      return;
    }
    // Another user can write it: taken out whole, what is excluded in it put back through a private copy.
    const held = this.custody.place('removed');
    await rename(abs, held);
    const kept = this.custody.place('kept');
    await mkdir(kept, { mode: 0o700 });
    const carrier = new Carrier(this.opts.rules, this.custody, this.opts.keepOwners);
    await carrier.carryInto(held, kept, rel);
    if (carrier.carried === 0) return;
    this.apply(kept, attributesOf(st));
    await rename(kept, abs);
  }

  /** A directory in dest where the archive has a file: it goes, unless something excluded is in it. */
  private async removeForReplacement(d: string, e: Dirent, rel: string): Promise<void> {
    await this.remove(d, e, rel);
    this.counts.removed--;
    if (await lstat(path.join(d, e.name)).catch(() => undefined)) {
      throw conflict(rel);
    }
  }

  /**
   * Gives an entry of dest (in a directory nobody else can change) the attributes rsync -a would, by
   * direct calls (see mergeDir); `known` is abs's lstat when the caller just took it.
   */
  apply(abs: string, a: Attributes, symlink = false, known?: Pick<Stats, 'uid' | 'gid' | 'mode' | 'mtimeMs'>): void {
    const st = known ?? lstatSync(abs);
    const chown = this.opts.keepOwners && (st.uid !== a.uid || st.gid !== a.gid);
    if (chown) lchownSync(abs, a.uid, a.gid);
    if (symlink) {
      if (st.mtimeMs !== a.mtime.getTime()) lutimesSync(abs, a.atime, a.mtime);
      return;
    }
    // chown clears setuid bits: the mode goes after it.
    if (chown || (st.mode & 0o7777) !== (a.mode & 0o7777)) chmodSync(abs, a.mode & 0o7777);
    if (st.mtimeMs !== a.mtime.getTime()) utimesSync(abs, a.atime, a.mtime);
  }

  /** Whether dest's entry may be kept and given the archive's attributes in place (keepableInPlace). */
  private keepable(src: Stats, dst: Stats): boolean {
    return !dst.isFile() || keepableInPlace(src, dst, this.opts.keepOwners, process.geteuid?.() ?? -1);
  }

  /** Whether dest already has the staged entry: the same type and content (a symlink's target). */
  private same(from: string, src: Stats, to: string, dst: Stats): boolean {
    if (src.isSymbolicLink() && dst.isSymbolicLink()) return readlinkSync(from) === readlinkSync(to);
    if (!src.isFile() || !dst.isFile() || src.size !== dst.size) return false;
    return this.sameContent(from, to, dst);
  }

  // Two buffers for the whole merge: comparing allocates nothing per file.
  private readonly left = Buffer.allocUnsafe(CHUNK);
  private readonly right = Buffer.allocUnsafe(CHUNK);

  /**
   * `b` is dest's file, `known` its lstat. It is opened without blocking: a file its owner holds a lease on
   * (fcntl F_SETLEASE, which any owner may take) would otherwise hold this synchronous open, and the whole
   * process with it, for up to lease-break-time (45 s) per file; a FIFO would hold it for ever. A file that
   * cannot be opened at once, or is no longer the one looked at, counts as changed: it is replaced.
   */
  private sameContent(a: string, b: string, known: Stats): boolean {
    const size = known.size;
    if (size === 0) return true;
    let fb: number;
    try {
      fb = openSync(b, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN' || (err as NodeJS.ErrnoException).code === 'EWOULDBLOCK') return false;
      throw err;
    }
    try {
      const opened = fstatSync(fb);
      if (!opened.isFile() || opened.ino !== known.ino || opened.dev !== known.dev) return false;
      const fa = openSync(a, 'r');
      try {
        for (let pos = 0; pos < size; ) {
          const ra = readSync(fa, this.left, 0, CHUNK, pos);
          const rb = readSync(fb, this.right, 0, CHUNK, pos);
          if (ra === 0 || ra !== rb || this.left.compare(this.right, 0, rb, 0, ra) !== 0) return false;
          pos += ra;
        }
        return true;
      } finally {
        closeSync(fa);
      }
    } finally {
      closeSync(fb);
    }
  }
}

/**
 * Where the archive has a file (or symlink) and dest a directory that keeps excluded entries: rsync
 * cannot make way there ("could not make way for new regular file"), and neither can the merge. Read
 * only: a directory another user can write may lie to this walk, but then the merge itself stops there.
 */
async function findConflict(staging: string, dest: string, rel: string, rules: readonly ExcludeRule[]): Promise<string | undefined> {
  if (rules.length === 0) return undefined;
  for (const e of await readdir(staging, { withFileTypes: true })) {
    const relEntry = join(rel, e.name);
    if (isExcluded(rules, relEntry, e.isDirectory())) continue;
    const there = await lstat(path.join(dest, e.name)).catch(() => undefined);
    if (!there?.isDirectory()) continue;
    if (e.isDirectory()) {
      const inner = await findConflict(path.join(staging, e.name), path.join(dest, e.name), relEntry, rules);
      if (inner) return inner;
    } else if (await keepsExcluded(path.join(dest, e.name), relEntry, rules)) return relEntry;
  }
  return undefined;
}

/** Whether a directory of dest holds (or is) an excluded entry that a deletion of it would keep. */
async function keepsExcluded(dir: string, rel: string, rules: readonly ExcludeRule[]): Promise<boolean> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const relEntry = join(rel, e.name);
    if (isExcluded(rules, relEntry, e.isDirectory())) return true;
    if (e.isDirectory() && (await keepsExcluded(path.join(dir, e.name), relEntry, rules))) return true;
  }
  return false;
}

function tryRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // Not empty: staging's removal takes the rest.
  }
}

function attributesOf(st: Stats): Attributes {
  return { mode: st.mode, uid: st.uid, gid: st.gid, atime: st.atime, mtime: st.mtime };
}

function join(rel: string, name: string): string {
  return rel ? `${rel}/${name}` : name;
}

const CHUNK = 256 * 1024;

import { chmodSync, constants, copyFileSync, lchownSync, linkSync, lstatSync, readFileSync, unlinkSync, utimesSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { lstatQuiet } from '../../shared/tree-path.js';
import { StretcherError } from '../../shared/errors.js';
import type { Log } from '../../shared/log.js';
import { HostileArchiveError, obstacleOnPath, parentOf, safeRelative, StagingTree, type UnpackLimits, type Unpacked } from '../entry-rules.js';
import { materialize, type Reuse } from '../reuse.js';
import { Counterparts, StagedFile } from '../writer/counterpart.js';
import { EntryConflictError, type FileEntry, timeArg } from '../writer/file.js';
import { BATCH_BYTES, WriterPool, type WriterError } from '../writer/pool.js';
import { TarStream, type EntryBody, type TarHeader } from './stream.js';

/**
 * The main thread writes files itself, and every this many files looks at what creating them cost: a
 * writer thread takes over only when creating is slow (SLOW_CREATE_MS). When it is cheap, as on tmpfs and a
 * fresh journaled ext4, a writer thread was the slower choice: the main thread then copies every byte into
 * batches and posts them, the thread writes them from another core's cache, and the process spent 17% more
 * CPU (1.58 s against 1.30 s) and 11% more time (1.18 s against 1.04 s) on the benchmark's large archive,
 * with 11 MB more peak RSS (bench/RESULTS.md, 2026-12-02, "one thread").
 */
const CREATE_WINDOW_FILES = 500;
/** Batch memory handed to writer threads and not yet written: reading pauses above HIGH until below LOW. */
const HIGH_WATER = 2 << 20;
const LOW_WATER = 1 << 20;
/**
 * Creating a file costs 0.01 ms on a journaled ext4 and 0.05 ms on a calm journal-less one. After many
 * deletions a journal-less ext4 spends up to 0.76 ms of kernel CPU in open(O_CREAT) (strace, perf), and
 * that is what threads can share: past this average, a writer thread takes the files over from the main
 * thread, and a second one joins it when it falls behind (one host nearly halved its time that way,
 * bench/RESULTS.md). The time to write data does not count: more threads do not make a slow disk or
 * throttled writeback faster. STRETCHER_TEST_SLOW_CREATE_MS lowers it, for the tests of writer threads.
 */
const SLOW_CREATE_MS = testSlowCreateMs() ?? 0.3;

function testSlowCreateMs(): number | undefined {
  const value = process.env.STRETCHER_TEST_SLOW_CREATE_MS;
  return value !== undefined && value !== '' && Number.isFinite(Number(value)) ? Number(value) : undefined;
}

/**
 * A tar's hard links: `link` makes each a link to its target's inode, as tar does; `copy` makes each a file
 * of its own with the target's bytes and attributes, as rsync -a (without -H) would put them in dest.
 */
export type HardLinks = 'link' | 'copy';

interface HardLink {
  rel: string;
  target: string;
}

/**
 * Unpacks a tar stream into `staging`, which must be private to this deploy: stream.ts parses it, the
 * shared rules (entry-rules.ts) say where each entry may go, and this class writes it.
 *
 * Safety, decided per case (README, "Archives"):
 * - `..` in a path, and hard links that leave the tree, fail the deploy: a half-unpacked hostile archive
 *   must not be deployed. A leading `/` is stripped, as GNU tar does;
 * - symlinks and hard links are made only after every file is written, so no entry is ever written through
 *   one; each component of every parent directory is checked to be a real directory;
 * - files are created with O_EXCL|O_NOFOLLOW: an existing file or symlink (an earlier layer's) is unlinked
 *   and replaced, never opened;
 * - device files and FIFOs are skipped with a warning;
 * - size and entry-count limits stop decompression bombs.
 * Modes are exact (the umask is not applied), owners are kept when running as root, and directory modes and
 * mtimes are restored after their contents are written, as GNU tar does.
 */
export class TarUnpacker {
  private readonly parser: TarStream;
  private readonly tree: StagingTree;
  private fatal: Error | undefined;
  private readonly hardLinks = new Map<string, HardLink>();
  private readonly isRoot = process.getuid?.() === 0;
  private readonly umask = currentUmask();
  /** Who owns a file created in staging: our uid, and staging's group if it is setgid, else ours. */
  private readonly newFileOwner: { uid: number; gid: number };
  private readonly now = Date.now() / 1000;
  private readonly threads = Math.min(2, availableParallelism());
  /** Files created on the main thread in the current window, and what creating them cost. */
  private createdHere = 0;
  private createHereMs = 0;
  private pool: WriterPool | undefined;
  private nextId = 0;
  /** The file being written on the main thread, closed if the archive ends inside it. */
  private openFile: StagedFile | undefined;
  /** Comparing with dest's files on the main thread (the first files of a small archive). */
  private readonly counterparts: Counterparts | undefined;

  /** `reuse`: compare each file with dest's and leave out of staging what dest already has. */
  constructor(
    private readonly staging: string,
    limits: UnpackLimits,
    private readonly log: Log,
    private readonly reuse?: Reuse,
    private readonly hardLinkMode: HardLinks = 'link',
  ) {
    const st = lstatSync(staging);
    this.tree = new StagingTree(staging, limits);
    this.counterparts = reuse ? new Counterparts(reuse.policy) : undefined;
    this.newFileOwner = { uid: process.geteuid?.() ?? st.uid, gid: st.mode & 0o2000 ? st.gid : (process.getegid?.() ?? st.gid) };
    this.parser = new TarStream({
      entry: (header) => this.onEntry(header),
      skipped: (header) => this.skipped(header),
      corrupt: (message) => this.corrupt(message),
    });
  }

  write(chunk: Buffer): void {
    // A writer thread's error ends the unpacking as soon as it is known, not after the last byte.
    if (this.pool?.error) this.stop(this.writerError(this.pool.error));
    if (this.fatal) return;
    try {
      this.parser.write(chunk);
      this.pool?.flush();
    } catch (err) {
      this.corrupt((err as Error).message);
    }
  }

  end(): void {
    if (this.fatal) return;
    try {
      this.parser.end();
    } catch (err) {
      this.corrupt((err as Error).message);
    }
  }

  /** Unpacking has failed or been stopped: no more input is needed. */
  get failed(): boolean {
    return this.fatal !== undefined;
  }

  /**
   * A promise to wait on before the next chunk, while writer threads have too much to write. When the
   * writers keep falling behind, file creation is the bottleneck and a second thread is added.
   */
  backpressure(): Promise<void> | undefined {
    if (!this.pool || this.pool.bytesInFlight < HIGH_WATER) return undefined;
    const msPerCreate = this.pool.msPerCreate ?? 0;
    if (this.pool.canGrow && msPerCreate > SLOW_CREATE_MS) {
      this.log.info(`unpacking: creating a file takes ${msPerCreate.toFixed(2)} ms, so a second writer thread joins the first`);
      return this.pool.grow();
    }
    return this.pool.below(LOW_WATER);
  }

  /** Waits for every write, then makes links and restores directories; throws what went wrong. */
  async finish(format: string): Promise<Unpacked> {
    try {
      if (this.pool) {
        await this.pool.idle();
        if (this.pool.error) this.fatal ??= this.writerError(this.pool.error);
      }
      if (this.fatal) throw this.fatal;
      let linked = 0;
      for (const hard of this.hardLinks.values()) {
        this.makeHardLink(hard);
        // Direct calls, as in StagingTree.complete(); the event loop still gets a turn for a signal.
        if (++linked % 256 === 0) await nextTurn();
      }
      await this.tree.complete(this.isRoot);
      return this.tree.report(this.log, format);
    } finally {
      await this.close();
    }
  }

  /** Stops writing: after this resolves nothing more is created in staging and no file is left open. */
  async close(): Promise<void> {
    this.fatal ??= new StretcherError('UNPACK_FAILED', 'unpacking was stopped');
    this.openFile?.abandon();
    this.openFile = undefined;
    await this.pool?.close();
  }

  private onEntry(e: TarHeader): EntryBody | undefined {
    if (this.fatal) return undefined;
    let rel: string;
    try {
      this.tree.count(e.size);
      rel = this.tree.relative(e.path);
    } catch (err) {
      return this.stop(err as Error);
    }
    if (e.path.startsWith('/')) this.log.warn(`archive: stripping / from absolute path ${JSON.stringify(e.path)}`);
    // A later entry with the same path replaces an earlier one, as in GNU tar.
    this.tree.replaces(rel);
    this.hardLinks.delete(rel);
    try {
      switch (e.type) {
        case 'File':
        case 'OldFile':
        case 'ContiguousFile':
          return this.file(e, rel);
        case 'Directory':
        case 'GNUDumpDir':
          this.tree.directory({
            rel,
            ...(typeof e.mode === 'number' ? { mode: e.mode } : {}),
            ...(e.mtime ? { mtime: e.mtime } : {}),
            ...this.ownerOf(e),
          });
          break;
        case 'SymbolicLink':
          this.tree.symlink({
            rel,
            target: String(e.linkpath ?? ''),
            ...(e.mtime ? { mtime: e.mtime } : {}),
            ...(typeof e.uid === 'number' ? { uid: e.uid } : {}),
            ...(typeof e.gid === 'number' ? { gid: e.gid } : {}),
          });
          break;
        case 'Link': {
          const target = safeRelative(String(e.linkpath ?? ''));
          if (rel === '' || !target) {
            return this.stop(new HostileArchiveError(`refusing the archive: hard link ${JSON.stringify(e.path)} points to ${JSON.stringify(e.linkpath)}, outside the staging directory`));
          }
          this.hardLinks.set(rel, { rel, target });
          break;
        }
        case 'CharacterDevice':
        case 'BlockDevice':
        case 'FIFO':
          this.skipped(e);
          break;
        // No other type reaches here: TarStream reports the rest as skipped (constructor).
      }
    } catch (err) {
      return this.stop(this.writeError(rel, err));
    }
    return undefined;
  }

  /**
   * A sparse file (`tar --sparse`) or a multi-volume continuation is a regular file we cannot rebuild:
   * deploying without it would not be the archive. Device files and FIFOs are not deployed, and other
   * types (tape volume labels, Solaris ACLs, inode records) are metadata: those are skipped, with a warning.
   */
  private skipped(e: TarHeader): void {
    if (this.fatal) return;
    if (e.type === 'SparseFile' || e.type === 'ContinuationFile') {
      const what =
        e.type === 'SparseFile'
          ? 'a sparse file (tar --sparse), which stretcher does not unpack: make the archive without --sparse'
          : 'the continuation of a multi-volume archive, which stretcher does not unpack';
      return void this.stop(new StretcherError('ARCHIVE_UNSUPPORTED', `cannot unpack ${JSON.stringify(e.path)}: it is ${what}`));
    }
    this.log.warn(`skipping archive entry ${JSON.stringify(e.path)}: ${e.type} entries are not unpacked`);
  }

  private file(e: TarHeader, rel: string): EntryBody {
    const again = this.tree.claimFile(rel);
    const mode = typeof e.mode === 'number' ? e.mode & 0o7777 : 0o644;
    const { owner } = this.ownerOf(e);
    const mtime = e.mtime ? e.mtime.getTime() / 1000 : undefined;
    // Two syscalls fewer per file for the usual archive: created with its mode, already owned right.
    const entry: FileEntry = {
      rel,
      abs: this.tree.abs(rel),
      mode,
      ...(mtime !== undefined ? { mtime, atime: e.atime ? e.atime.getTime() / 1000 : this.now } : {}),
      ...(owner && (owner.uid !== this.newFileOwner.uid || owner.gid !== this.newFileOwner.gid) ? { owner } : {}),
      ...((mode & 0o7000) === 0 && (mode & this.umask) === 0 ? { createMode: mode } : {}),
    };
    // Compared with dest's only with a whole-second mtime: a fraction would not come back from the kernel
    // exactly as the merge would read it from a staged copy.
    if (this.reuse && Number.isInteger(mtime)) {
      const { uid, gid } = owner ?? this.newFileOwner;
      entry.compare = { size: e.size, uid, gid, replacing: again || this.reuse.layered };
    } else if (this.reuse) this.reuse.allCompared = false;
    if (!this.pool && !this.createIsSlow()) return this.writeHere(entry);
    return this.writeThere(entry);
  }

  /** At the end of each window of files created here: whether a writer thread should take over. */
  private createIsSlow(): boolean {
    if (this.threads < 2 || this.createdHere < CREATE_WINDOW_FILES) return false;
    const msPerCreate = this.createHereMs / this.createdHere;
    this.createdHere = 0;
    this.createHereMs = 0;
    if (msPerCreate <= SLOW_CREATE_MS) return false;
    this.log.info(`unpacking: creating a file takes ${msPerCreate.toFixed(2)} ms, so a writer thread takes the files over`);
    return true;
  }

  private writeHere(entry: FileEntry): EntryBody {
    const started = performance.now();
    const file = new StagedFile(entry, this.counterparts);
    this.createHereMs += performance.now() - started;
    this.createdHere++;
    this.openFile = file;
    const failed = (err: unknown): void => {
      // Closes only what is still open: a descriptor closed twice could be another thread's by then.
      file.abandon();
      this.openFile = undefined;
      this.stop(this.writeError(entry.rel, err));
    };
    return {
      data: (piece) => {
        if (this.openFile !== file) return;
        try {
          file.write(piece);
        } catch (err) {
          failed(err);
        }
      },
      end: () => {
        if (this.openFile !== file) return;
        this.openFile = undefined;
        try {
          const kept = file.end();
          if (kept) this.reuse?.kept.add(kept);
        } catch (err) {
          failed(err);
        }
      },
    };
  }

  private writeThere(entry: FileEntry): EntryBody {
    this.pool ??= new WriterPool(this.threads, this.reuse?.policy, this.reuse?.kept);
    const pool = this.pool;
    const thread = pool.route(entry.rel);
    const id = this.nextId++;
    let chunks: Buffer[] = [];
    let bytes = 0;
    let first = true;
    const add = (last: boolean): void => {
      pool.add(thread, id, first ? entry : undefined, chunks, bytes, last);
      first = false;
      chunks = [];
      bytes = 0;
    };
    return {
      data: (piece) => {
        let rest = piece;
        while (bytes + rest.length >= BATCH_BYTES) {
          const take = BATCH_BYTES - bytes;
          chunks.push(rest.subarray(0, take));
          bytes += take;
          rest = rest.subarray(take);
          add(false);
        }
        if (rest.length > 0) {
          chunks.push(rest);
          bytes += rest.length;
        }
      },
      end: () => add(true),
    };
  }

  private makeHardLink(hard: HardLink): void {
    this.tree.realDir(parentOf(hard.rel), false);
    const obstacle = obstacleOnPath(this.staging, hard.target);
    if (obstacle) {
      throw new HostileArchiveError(`refusing the archive: hard link ${JSON.stringify(hard.rel)} points to ${JSON.stringify(hard.target)}, which passes through ${obstacle}`);
    }
    const target = path.join(this.staging, hard.target);
    let st = lstatQuiet(target);
    // Its target is a file dest already had, never staged: staged now, for the link to have its inode.
    const kept = st ? undefined : this.reuse?.kept.get(hard.target);
    if (kept && this.reuse) {
      materialize(kept, this.staging, this.reuse.policy);
      this.reuse.kept.delete(hard.target);
      st = lstatSync(target);
    }
    if (!st?.isFile()) {
      throw new HostileArchiveError(`refusing the archive: hard link ${JSON.stringify(hard.rel)} points to ${JSON.stringify(hard.target)}, which is not a file in the archive`);
    }
    const abs = path.join(this.staging, hard.rel);
    const existing = lstatQuiet(abs);
    if (existing?.isDirectory()) throw new HostileArchiveError(`refusing the archive: archive entry ${JSON.stringify(hard.rel)} is a hard link where a directory already is`);
    if (existing) unlinkSync(abs);
    if (this.hardLinkMode === 'link') return linkSync(target, abs);
    // A file of its own, as rsync -a gives each name: the same bytes and the inode's attributes.
    copyFileSync(target, abs, constants.COPYFILE_EXCL);
    if (this.isRoot) lchownSync(abs, st.uid, st.gid);
    chmodSync(abs, st.mode & 0o7777);
    utimesSync(abs, timeArg(st.atimeMs / 1000), timeArg(st.mtimeMs / 1000));
  }

  private ownerOf(e: TarHeader): { owner?: { uid: number; gid: number } } {
    return this.isRoot && typeof e.uid === 'number' && typeof e.gid === 'number' ? { owner: { uid: e.uid, gid: e.gid } } : {};
  }

  private stop(err: Error): undefined {
    this.fatal ??= err;
    // Nothing more is parsed, and the caller stops inflating: a decompression bomb is not read to its end.
    this.parser.stop();
    return undefined;
  }

  /** The archive is damaged: its gzip layer (archive.ts) or its tar structure (TarStream) said why. */
  corrupt(text: string): void {
    this.fatal ??= new StretcherError('ARCHIVE_CORRUPT', `cannot unpack the archive: ${text}`);
  }

  private writeError(rel: string, err: unknown): Error {
    if (err instanceof StretcherError) return err;
    if (err instanceof EntryConflictError) return new HostileArchiveError(`refusing the archive: ${err.message}`);
    return new StretcherError('UNPACK_FAILED', `cannot unpack ${JSON.stringify(rel)}`, { cause: err });
  }

  private writerError(err: WriterError): Error {
    if (err.conflict) return new HostileArchiveError(`refusing the archive: ${err.message}`);
    return new StretcherError('UNPACK_FAILED', err.rel ? `cannot unpack ${JSON.stringify(err.rel)}: ${err.message}` : `cannot unpack the archive: ${err.message}`);
  }
}

/**
 * The process's umask, from /proc where it can be read without changing it (process.umask() with no
 * argument sets it to 0 and back, a race with writer threads creating files). Unknown: assume the worst,
 * so that every mode is set explicitly.
 */
function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
    if (m?.[1]) return parseInt(m[1], 8);
  } catch {
    // not Linux
  }
  return 0o777;
}

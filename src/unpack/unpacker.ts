import { closeSync, openSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
import { StretcherError } from '../shared/errors.js';
import type { Log } from '../shared/log.js';
import type { UnpackLimits, Unpacked } from './entry-rules.js';
import { detectFormat, type ArchiveFormat } from './format.js';
import { InflateInput } from './inflate-input.js';
import type { Reuse } from './reuse.js';
import { Scavenger } from '../shared/scavenger.js';
import { type HardLinks, TarUnpacker } from './tar/unpacker.js';

export type { HardLinks };
import { closeQuietly, writeChunks } from './writer/file.js';

export type { UnpackLimits, Unpacked };

export interface Unpacker {
  /** Takes the archive's bytes as they arrive. It never fails the stream: problems wait for finish(). */
  sink: Writable;
  /**
   * Called after the last byte, once the checksum is verified (an unverified archive's problems are not
   * worth reporting: the checksum mismatch is the real one). Completes the tree or throws what was wrong.
   */
  finish(): Promise<Unpacked>;
  /** Called when the download fails or is aborted: once it resolves, nothing more is written to staging. */
  close(): Promise<void>;
}

/**
 * Unpacks a tar, tar.gz or zip into `staging`, which must be empty and private to this deploy, while it is
 * being downloaded. Zip needs random access (its directory is at the end): it is spooled to
 * `spoolFile` and unpacked by finish(), after the checksum is verified. With `reuse`, a tar's files that dest
 * already has are compared, not written (reuse.ts).
 */
export function createUnpacker(staging: string, limits: UnpackLimits, log: Log, spoolFile: string, reuse?: Reuse, hardLinks: HardLinks = 'link'): Unpacker {
  return new ArchiveSink({ staging, limits, log, spoolFile, hardLinks, ...(reuse ? { reuse } : {}) });
}

interface Target {
  staging: string;
  hardLinks: HardLinks;
  limits: UnpackLimits;
  log: Log;
  spoolFile: string;
  reuse?: Reuse;
}

/** What is done with the bytes, once the first ones have said what the archive is. */
interface Phase {
  /** Hands bytes on; a promise, if any, says when to send more. */
  write(chunk: Buffer): Promise<void> | undefined;
  /** The last byte has arrived; `done` once everything has been handed on. */
  end(done: (err?: Error) => void): void;
  close(): Promise<void>;
  finish(): Promise<Unpacked>;
}

const SNIFF_BYTES = 512;
/** gunzip's output chunk (see GzippedTar). */
const INFLATED_CHUNK = 256 * 1024;

class ArchiveSink implements Unpacker {
  readonly sink: Writable;
  private phase: Phase | undefined;
  private head: Buffer[] = [];
  private headBytes = 0;

  constructor(private readonly target: Target) {
    this.sink = new Writable({
      highWaterMark: 256 * 1024,
      // What throws here is this host's (a full disk under the zip's spool): it fails the download, which
      // says so and does not retry.
      write: (chunk: Buffer, _enc, done) => {
        let full: Promise<void> | undefined;
        try {
          full = this.write(chunk);
        } catch (err) {
          return done(err as Error);
        }
        if (full) full.then(() => done(), done);
        else done();
      },
      final: (done) => {
        try {
          this.started().end(done);
        } catch (err) {
          done(err as Error);
        }
      },
    });
  }

  private write(chunk: Buffer): Promise<void> | undefined {
    if (this.phase) return this.phase.write(chunk);
    this.head.push(chunk);
    this.headBytes += chunk.length;
    if (this.headBytes >= SNIFF_BYTES) this.started();
    return undefined;
  }

  /** The phase, chosen from the first bytes (an archive shorter than a tar header is judged at its end). */
  private started(): Phase {
    if (this.phase) return this.phase;
    const first = Buffer.concat(this.head);
    this.head = [];
    this.phase = phaseFor(detectFormat(first), this.target);
    void this.phase.write(first);
    return this.phase;
  }

  close(): Promise<void> {
    return this.phase?.close() ?? Promise.resolve();
  }

  finish(): Promise<Unpacked> {
    return this.started().finish();
  }
}

const UNSUPPORTED: Partial<Record<ArchiveFormat, string>> = {
  bzip2: 'bzip2-compressed',
  xz: 'xz-compressed',
  zstd: 'zstd-compressed',
  unknown: 'not a tar, gzip or zip archive',
};

function phaseFor(format: ArchiveFormat, target: Target): Phase {
  if (format === 'zip') return new ZipSpool(target);
  if (format === 'tar') return new PlainTar(target);
  if (format === 'gzip') return new GzippedTar(target);
  const what = UNSUPPORTED[format] ?? format;
  return new Refused(new StretcherError('ARCHIVE_UNSUPPORTED', `the archive is ${what}; stretcher unpacks tar, gzip-compressed tar (.tar, .tar.gz, .tgz) and zip`));
}

/** A format stretcher does not unpack: the bytes are ignored and finish() says why. */
class Refused implements Phase {
  constructor(private readonly error: StretcherError) {}
  write(): undefined {
    return undefined;
  }
  end(done: () => void): void {
    done();
  }
  async close(): Promise<void> {}
  async finish(): Promise<Unpacked> {
    throw this.error;
  }
}

/** A tar as it is: parsed and written as the bytes arrive. */
class PlainTar implements Phase {
  protected readonly tar: TarUnpacker;
  protected readonly scavenger = new Scavenger();

  constructor(target: Target) {
    this.tar = new TarUnpacker(target.staging, target.limits, target.log, target.reuse, target.hardLinks);
  }

  write(chunk: Buffer): Promise<void> | undefined {
    this.tar.write(chunk);
    this.scavenger.discarded(chunk.length);
    return this.tar.backpressure();
  }

  end(done: () => void): void {
    this.tar.end();
    done();
  }

  close(): Promise<void> {
    return this.tar.close();
  }

  finish(): Promise<Unpacked> {
    return this.tar.finish(this.format());
  }

  protected format(): string {
    return 'tar';
  }
}

/**
 * A tar.gz: inflated in libuv's pool, beside the main thread (HTTP, parsing) and the writer thread, as
 * inflating was the main thread's largest cost. Inflated chunks are parsed on the next turn of the event
 * loop, not in zlib's callback, because zlib queues its next slice only after that callback returns:
 * parsing there left the inflating thread idle while the main thread parsed, and the other way round.
 * Output chunks of 256 KiB, not 1 MiB: each is a fresh malloc'd buffer that lives until a scavenge, and 1 MiB
 * ones raised the large deploy's peak RSS by 6 MB (96.0 -> 89.7 MB) for no measurable speed (1.81 s vs
 * 1.75 s, 10 alternated runs on a loaded machine; bench/RESULTS.md).
 */
class GzippedTar extends PlainTar {
  private readonly gunzip: Gunzip = createGunzip({ chunkSize: INFLATED_CHUNK });
  private readonly input = new InflateInput(this.gunzip);
  private inflated: Buffer[] = [];
  private scheduled = false;
  /** Bytes of the archive received, and inflated: where a damaged gzip stream broke, for its error. */
  private received = 0;
  private inflatedBytes = 0;

  constructor(target: Target) {
    super(target);
    this.gunzip.on('data', (chunk: Buffer) => {
      this.inflatedBytes += chunk.length;
      this.inflated.push(chunk);
      if (!this.scheduled) setImmediate(() => this.parse());
      this.scheduled = true;
    });
    this.gunzip.on('error', (err: NodeJS.ErrnoException) => {
      // zlib's Z_BUF_ERROR at the end: the stream stops before its last block (a file or download cut short).
      if (err.code === 'Z_BUF_ERROR') this.tar.corrupt(`it is cut short: its ${this.received} bytes of gzip end mid-stream, after ${this.inflatedBytes} bytes inflated`);
      else this.tar.corrupt(`its gzip data is damaged (${err.message}), ${this.inflatedBytes} bytes into the inflated tar, of the archive's ${this.received} bytes`);
    });
  }

  /** Hands what gunzip has emitted to the tar unpacker. */
  private parse(): void {
    this.scheduled = false;
    const chunks = this.inflated;
    this.inflated = [];
    for (const chunk of chunks) {
      this.tar.write(chunk);
      this.scavenger.discarded(chunk.length);
    }
    // The rest is not needed (finish() reports why), and a decompression bomb is not inflated to its end.
    if (this.tar.failed) return void this.gunzip.destroy();
    const full = this.tar.backpressure();
    if (full) {
      this.gunzip.pause();
      void full.then(() => this.gunzip.resume());
    }
  }

  override write(chunk: Buffer): Promise<void> | undefined {
    this.received += chunk.length;
    return this.input.write(chunk);
  }

  override end(done: () => void): void {
    const inflate = this.gunzip;
    if (inflate.destroyed) return super.end(done);
    // The tar ends once everything inflated has reached it (or inflating failed).
    const ended = (): void => {
      inflate.off('end', ended).off('close', ended);
      this.parse();
      super.end(done);
    };
    inflate.on('end', ended).on('close', ended);
    this.input.flush();
    inflate.end();
  }

  override close(): Promise<void> {
    this.gunzip.destroy();
    return super.close();
  }

  protected override format(): string {
    return 'tar.gz';
  }
}

/**
 * A zip: kept in a file until the checksum is verified, then unpacked from it. Written by direct calls, as
 * the writer threads write (page-cache copies), so that the socket's chunks are garbage at once and a write
 * error fails the download where it happens: a WriteStream's ENOSPC was an unhandled 'error' event, which
 * killed node before any failure command ran.
 */
class ZipSpool implements Phase {
  private fd: number | undefined;
  private readonly scavenger = new Scavenger();

  constructor(private readonly target: Target) {
    this.fd = openSync(target.spoolFile, 'w', 0o600);
    // A zip's files are staged without comparing them with dest's.
    if (target.reuse) target.reuse.allCompared = false;
  }

  write(chunk: Buffer): undefined {
    if (this.fd === undefined) return undefined;
    writeChunks(this.fd, [chunk]);
    this.scavenger.discarded(chunk.length);
    return undefined;
  }

  end(done: (err?: Error) => void): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd !== undefined) closeSync(fd);
    done();
  }

  async close(): Promise<void> {
    if (this.fd !== undefined) closeQuietly(this.fd);
    this.fd = undefined;
  }

  async finish(): Promise<Unpacked> {
    try {
      const { unzipInto } = await import('./zip.js');
      return await unzipInto(this.target.spoolFile, this.target.staging, this.target.limits, this.target.log);
    } finally {
      await rm(this.target.spoolFile, { force: true });
    }
  }
}

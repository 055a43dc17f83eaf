import { createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { createGunzip, type Gunzip } from 'node:zlib';
import { formatBytes } from '../shared/units.js';
import { StretcherError } from '../shared/errors.js';
import { InflateInput } from './inflate-input.js';
import type { Log } from '../shared/log.js';
import { Scavenger } from './scavenger.js';
import { TarUnpacker, type ExtractLimits } from './tar/unpacker.js';

export type { ExtractLimits };

export type ArchiveFormat = 'tar' | 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'zip' | 'unknown';

export interface Extracted {
  format: ArchiveFormat;
  entries: number;
  bytes: number;
}


/** The format from the first bytes; file names and Content-Type lie too often to be trusted. */
export function detectFormat(head: Buffer): ArchiveFormat {
  const starts = (...bytes: number[]): boolean => bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return 'gzip';
  if (starts(0x42, 0x5a, 0x68)) return 'bzip2';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (starts(0x50, 0x4b, 0x03, 0x04) || starts(0x50, 0x4b, 0x05, 0x06)) return 'zip';
  if (head.length >= 512 && (head.subarray(257, 262).toString('latin1') === 'ustar' || tarChecksumValid(head))) return 'tar';
  // An archive of nothing but end-of-archive blocks is a valid, empty tar.
  if (head.length >= 512 && head.subarray(0, 512).every((b) => b === 0)) return 'tar';
  return 'unknown';
}

/** Old v7 archives have no "ustar" magic; a header whose checksum adds up is a tar header. */
function tarChecksumValid(block: Buffer): boolean {
  const stored = parseInt(block.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/, '').trim(), 8);
  if (Number.isNaN(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
  return sum === stored;
}

const UNSUPPORTED: Partial<Record<ArchiveFormat, string>> = {
  bzip2: 'bzip2-compressed',
  xz: 'xz-compressed',
  zstd: 'zstd-compressed',
  unknown: 'not a tar, gzip or zip archive',
};

export interface Extractor {
  /** Takes the archive's bytes as they arrive. It never fails the stream: problems wait for finish(). */
  sink: Writable;
  /**
   * Called after the last byte, once the checksum is verified (an unverified archive's problems are not
   * worth reporting: the checksum mismatch is the real one). Completes the tree or throws what was wrong.
   */
  finish(): Promise<Extracted>;
  /** Called when the download fails or is aborted: once it resolves, nothing more is written to staging. */
  close(): Promise<void>;
}

/**
 * Unpacks a tar or tar.gz (tar-unpack.ts, with its safety rules) into `staging`, which must be empty and
 * private to this deploy, while it is being downloaded. Zip needs random access (its directory is at the
 * end): it is spooled to `spoolFile` and unpacked by finish(), after the checksum is verified.
 * `archiveBytes`, the archive's size when known beforehand, lets a large one start its writer thread at once.
 */
export function createExtractor(staging: string, limits: ExtractLimits, log: Log, spoolFile: string, archiveBytes?: number): Extractor {
  let spool: WriteStream | undefined;
  let format: ArchiveFormat | undefined;
  let head: Buffer[] = [];
  let headBytes = 0;
  let tar: TarUnpacker | undefined;
  let gunzip: Gunzip | undefined;
  let gunzipInput: InflateInput | undefined;
  /** Parses what gunzip has emitted and not yet handed to the tar unpacker. */
  let parseInflated: (() => void) | undefined;
  let fatal: Error | undefined;
  const scavenger = new Scavenger();

  function start(): void {
    const first = Buffer.concat(head);
    head = [];
    format = detectFormat(first);
    if (format === 'zip') {
      spool = createWriteStream(spoolFile, { mode: 0o600 });
      spool.write(first);
      return;
    }
    const unsupported = UNSUPPORTED[format];
    if (unsupported) {
      fatal ??= new StretcherError('ARCHIVE_UNSUPPORTED', `the archive is ${unsupported}; stretcher unpacks tar, gzip-compressed tar (.tar, .tar.gz, .tgz) and zip`);
      return;
    }
    const unpacker = (tar = new TarUnpacker(staging, limits, log, archiveBytes));
    if (format === 'gzip') {
      // Inflated in libuv's pool, beside the main thread (HTTP, parsing) and the writer thread: inflating
      // was the main thread's largest cost (~280 of ~1,000 ms for the large benchmark archive). Each
      // output chunk is a round trip through the main thread: 512 KiB chunks were 8% faster than 128 KiB
      // (alternated, median 1.04 s vs 1.13 s), and 1 MiB 4% faster than 512 KiB (10 runs, 0.865 s vs
      // 0.90 s) for 5 MB more peak RSS (103 MB vs 98 MB).
      const inflate = (gunzip = createGunzip({ chunkSize: 1024 * 1024 }));
      gunzipInput = new InflateInput(inflate);
      // Parsed on the next turn of the event loop, not in zlib's callback: zlib queues its next slice only
      // after that callback returns, so parsing there left the inflating thread idle while the main thread
      // parsed, and the other way round. 4% faster (8 alternated runs, median 0.98 s vs 1.025 s).
      let inflated: Buffer[] = [];
      let scheduled = false;
      const parse = (): void => {
        scheduled = false;
        const chunks = inflated;
        inflated = [];
        for (const chunk of chunks) {
          unpacker.write(chunk);
          scavenger.discarded(chunk.length);
        }
        // The rest is not needed (finish() reports why), and a decompression bomb is not inflated to its end.
        if (unpacker.failed) return void inflate.destroy();
        const full = unpacker.backpressure();
        if (full) {
          inflate.pause();
          void full.then(() => inflate.resume());
        }
      };
      parseInflated = parse;
      inflate.on('data', (chunk: Buffer) => {
        inflated.push(chunk);
        if (!scheduled) setImmediate(parse);
        scheduled = true;
      });
      inflate.on('error', (err) => unpacker.corrupt(err.message));
    }
    feed(first);
  }

  /** Hands archive bytes on; the promise, if any, says when to send more. */
  function feed(chunk: Buffer): Promise<void> | undefined {
    if (gunzipInput) return gunzipInput.write(chunk);
    tar?.write(chunk);
    scavenger.discarded(chunk.length);
    return tar?.backpressure();
  }

  const sink = new Writable({
    highWaterMark: 256 * 1024,
    write(chunk: Buffer, _enc, done) {
      if (spool) {
        if (!spool.write(chunk)) spool.once('drain', () => done());
        else done();
        return;
      }
      let full: Promise<void> | undefined;
      if (format === undefined) {
        head.push(chunk);
        headBytes += chunk.length;
        if (headBytes >= 512) start();
      } else {
        full = feed(chunk);
      }
      if (full) full.then(() => done(), done);
      else done();
    },
    final(done) {
      // An archive shorter than a tar header is detected only now.
      if (format === undefined) start();
      if (spool) return void spool.end(done);
      const inflate = gunzip;
      if (inflate && !inflate.destroyed) {
        // The tar ends once everything inflated has reached it (or inflating failed).
        const ended = (): void => {
          inflate.off('end', ended).off('close', ended);
          parseInflated?.();
          tar?.end();
          done();
        };
        inflate.on('end', ended).on('close', ended);
        gunzipInput?.flush();
        inflate.end();
        return;
      }
      tar?.end();
      done();
    },
  });

  return {
    sink,
    async close() {
      spool?.destroy();
      gunzip?.destroy();
      await tar?.close();
    },
    async finish() {
      if (fatal) throw fatal;
      if (spool) {
        try {
          const { unzipInto } = await import('./zip.js');
          return await unzipInto(spoolFile, staging, limits, log);
        } finally {
          await rm(spoolFile, { force: true });
        }
      }
      const { entries, bytes } = await (tar as TarUnpacker).finish();
      const kind = format === 'gzip' ? 'tar.gz' : 'tar';
      log.info(`unpacked ${entries} entries (${formatBytes(bytes)}, ${kind})`, { entries, bytes });
      return { format: format ?? 'unknown', entries, bytes };
    },
  };
}

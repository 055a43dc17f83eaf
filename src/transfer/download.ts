import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { formatDuration } from '../shared/duration.js';
import { StretcherError } from '../shared/errors.js';
import type { Location } from '../shared/location.js';
import type { Log } from '../shared/log.js';
import { formatBytes } from '../shared/units.js';
import type { Checksum } from './checksum.js';
import { ChecksumError, TransferError } from './failure.js';
import { withRetry } from './retry.js';
import { Progress } from './progress.js';
import { openSource, type OpenedSource, type Validators } from './sources/index.js';
import { Throttle } from './throttle.js';

export interface TransferOptions {
  retry: number;
  retryWaitMs: number;
  /** Bounds the whole transfer, retries and waits included; 0 = none. */
  timeoutMs: number;
  maxBandwidth?: number;
  /** A body that sends nothing for this long is treated as broken (and retried). */
  stallMs: number;
  signal: AbortSignal;
  log: Log;
  userAgent: string;
  env: NodeJS.ProcessEnv;
}

/** Errors of this host, not of the transfer: a retry would meet them again. */
const DISK_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM', 'EIO', 'EMFILE']);

/**
 * Streams one attempt's body through `sinks`, watching for stalls and short bodies. With `throttled`, the
 * bandwidth limit applies first and the stall watchdog counts what leaves it: a throttle holding a chunk
 * pauses the socket, and that pause is ours, not the server's.
 */
async function transfer(location: Location, opened: OpenedSource, sinks: (Transform | Writable)[], opts: TransferOptions, signal: AbortSignal, throttled = false): Promise<number> {
  let bytes = 0;
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  const watchdog = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      opened.body.destroy(new TransferError(`no data from ${location} for ${formatDuration(opts.stallMs)}`, { stage: 'body' }));
    }, opts.stallMs);
  };
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      watchdog();
      done(null, chunk);
    },
  });
  watchdog();
  try {
    const throttle = throttled && opts.maxBandwidth ? [new Throttle(opts.maxBandwidth)] : [];
    await pipeline([opened.body, ...throttle, counter, ...sinks], { signal });
  } catch (err) {
    if (signal.aborted || stalled || err instanceof StretcherError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (DISK_ERRORS.has(code)) throw new TransferError('cannot write the download', { stage: 'local', errno: code }, { cause: err });
    throw new TransferError(`transfer of ${location} broke off after ${formatBytes(bytes)}`, { stage: 'body', ...(code ? { errno: code } : {}) }, { cause: err });
  } finally {
    clearTimeout(timer);
  }
  if (opened.size !== undefined && bytes !== opened.size) {
    throw new TransferError(`transfer of ${location} ended after ${bytes} of ${opened.size} bytes`, { stage: 'body' });
  }
  return bytes;
}

export interface Fetched {
  bytes: Buffer;
  /** The URL after redirects. */
  url: string;
  /** Only with `conditional`: the document has not changed, and `bytes` is empty. */
  notModified?: boolean;
  validators?: Validators;
}

/** A small document (a manifest, a signature), read whole into memory, with the same retry rules. */
export async function fetchBytes(location: Location, maxBytes: number, what: string, opts: TransferOptions, conditional?: Validators): Promise<Fetched> {
  return withRetry(`fetching ${what} ${location}`, opts, async (signal) => {
    const opened = await openSource(location, { signal, userAgent: opts.userAgent, env: opts.env, ...(conditional ? { conditional } : {}) });
    const validators = opened.validators ? { validators: opened.validators } : {};
    if (opened.notModified) return { bytes: Buffer.alloc(0), url: opened.finalUrl ?? location.href, notModified: true, ...validators };
    if (opened.size !== undefined && opened.size > maxBytes) {
      opened.body.destroy();
      throw new StretcherError('TOO_LARGE', `${what} ${location} is ${formatBytes(opened.size)}; the limit is ${formatBytes(maxBytes)}`);
    }
    const chunks: Buffer[] = [];
    let total = 0;
    const collect = new Writable({
      write(chunk: Buffer, _enc, done) {
        total += chunk.length;
        if (total > maxBytes) return done(new StretcherError('TOO_LARGE', `${what} ${location} is larger than the limit of ${formatBytes(maxBytes)}`));
        chunks.push(chunk);
        done();
      },
    });
    await transfer(location, opened, [collect], opts, signal);
    return { bytes: Buffer.concat(chunks), url: opened.finalUrl ?? location.href, ...validators };
  });
}

/** Where a verified download goes: an unpacker, or a file. */
export interface Sink<T> {
  sink: Writable;
  /** Called once the checksum matched. */
  finish(): Promise<T>;
  /** Called when the attempt fails, before any retry: stops whatever the sink still has in progress. */
  close?(): Promise<void>;
}

/**
 * An archive, hashed as it arrives and handed to a sink (usually an unpacker, so that unpacking overlaps
 * the transfer and no copy is written to disk): memory stays flat whatever its size. `newSink` gives each
 * attempt a fresh sink; nothing from it is used unless the checksum matches, and the caller removes it
 * otherwise.
 */
export async function downloadVerified<T>(location: Location, checksum: Checksum, opts: TransferOptions, newSink: () => Promise<Sink<T>>): Promise<T> {
  const started = performance.now();
  return withRetry(`downloading ${location}`, opts, async (signal) => {
    const opened = await openSource(location, { signal, userAgent: opts.userAgent, env: opts.env });
    const target = await newSink();
    const hash = createHash(checksum.algorithm);
    const progress = new Progress(opts.log, 'downloading', opened.size);
    const hasher = new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        progress.add(chunk.length);
        done(null, chunk);
      },
    });
    let downloaded: number;
    try {
      try {
        downloaded = await transfer(location, opened, [hasher, target.sink], opts, signal, true);
      } finally {
        progress.done();
      }
      const actual = hash.digest('hex');
      if (actual !== checksum.hex) throw new ChecksumError(location.shown, checksum.algorithm, checksum.hex, actual);
    } catch (err) {
      await target.close?.();
      throw err;
    }
    const ms = performance.now() - started;
    opts.log.info(`downloaded ${location}: ${formatBytes(downloaded)} in ${formatDuration(ms)}, ${checksum.algorithm} verified`, {
      bytes: downloaded,
      duration_ms: Math.round(ms),
    });
    return target.finish();
  });
}

/** A sink that keeps the verified bytes in a file (layers, which are unpacked only once all are verified). */
export function fileSink(file: string): Sink<string> {
  return { sink: createWriteStream(file, { mode: 0o600 }), finish: async () => file };
}

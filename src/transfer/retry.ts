import { setTimeout as sleep } from 'node:timers/promises';
import { formatDuration } from '../shared/duration.js';
import { errorMessage, StretcherError } from '../shared/errors.js';
import type { Log } from '../shared/log.js';
import { isRetryable, TransferError } from './failure.js';

/** --retry, --retry-wait and --timeout, as every talk with a remote takes them. */
export interface RetryOptions {
  retry: number;
  retryWaitMs: number;
  /** Bounds the whole, retries and waits included; 0 = none. */
  timeoutMs: number;
  signal: AbortSignal;
  log: Log;
}

/** What a failed attempt amounts to: the error to report, and whether another attempt may succeed. */
export interface Failure {
  error: unknown;
  retryable: boolean;
}

/** Longest we honour a server's Retry-After; past it the operator is better served by a failure. */
const MAX_RETRY_AFTER_MS = 5 * 60_000;

/**
 * Runs `attempt` until it succeeds, fails finally, or runs out of retries or time. Every attempt starts
 * from scratch (a fresh request, a truncated file, a new hash): a resumed download could mix two versions
 * of an object that changed between attempts. `classify` says what a failure means (by default the one
 * rule of failure.ts; git explains its own).
 */
export async function withRetry<T>(
  what: string,
  opts: RetryOptions,
  attempt: (signal: AbortSignal) => Promise<T>,
  classify: (err: unknown) => Failure = (err) => ({ error: err, retryable: isRetryable(err) }),
): Promise<T> {
  const timeout = opts.timeoutMs > 0 ? AbortSignal.timeout(opts.timeoutMs) : undefined;
  const signal = timeout ? AbortSignal.any([opts.signal, timeout]) : opts.signal;
  const timedOut = (): Error => new StretcherError('TRANSFER_TIMEOUT', `${what} timed out after ${formatDuration(opts.timeoutMs)} (--timeout)`);
  for (let n = 0; ; n++) {
    try {
      return await attempt(signal);
    } catch (err) {
      if (opts.signal.aborted) throw opts.signal.reason;
      if (timeout?.aborted) throw timedOut();
      const { error, retryable } = classify(err);
      const facts = error instanceof TransferError ? error.facts : undefined;
      if (!retryable || n >= opts.retry) {
        if (retryable && opts.retry > 0 && facts) throw new TransferError(`${errorMessage(error)} (gave up after ${n + 1} attempts)`, facts);
        throw error;
      }
      const wait = Math.min(MAX_RETRY_AFTER_MS, Math.max(opts.retryWaitMs, facts?.retryAfterMs ?? 0));
      opts.log.warn(`${errorMessage(error)}; retrying in ${formatDuration(wait)} (attempt ${n + 2} of ${opts.retry + 1})`);
      try {
        await sleep(wait, undefined, { signal });
      } catch {
        if (opts.signal.aborted) throw opts.signal.reason;
        throw timedOut();
      }
    }
  }
}

import { StretcherError, type ErrorCode } from '../shared/errors.js';

/**
 * What is known about a failed transfer, whatever the scheme: enough for one rule (isRetryable) to decide
 * whether another attempt could go differently.
 */
export interface TransferFacts {
  /** Where it failed: reaching the server, its answer, the body once flowing, or on this host (the disk). */
  stage: 'connect' | 'response' | 'body' | 'local';
  /** The status the server answered with (HTTP, or the one an S3 or GCS error carries). */
  status?: number;
  /** The network stack's or the library's code (ECONNRESET, ENOTFOUND, ERR_TOO_MANY_REDIRECTS...). */
  errno?: string;
  /** A server's Retry-After, honoured by the wait before the next attempt. */
  retryAfterMs?: number;
}

export class TransferError extends StretcherError {
  override name = 'TransferError';
  constructor(
    message: string,
    readonly facts: TransferFacts,
    options?: { cause?: unknown; code?: ErrorCode },
  ) {
    super(options?.code ?? 'TRANSFER_FAILED', message, options);
  }
}

/** The bytes arrived whole and were not the ones the manifest names. Never retried: they would not change. */
export class ChecksumError extends StretcherError {
  override name = 'ChecksumError';
  constructor(
    readonly url: string,
    readonly algorithm: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super('CHECKSUM_MISMATCH', `checksum mismatch for ${url}: expected ${algorithm} ${expected}, got ${actual}`);
  }
}

/** Statuses after which the same request may succeed in a moment (every other answer is final). */
const RETRY_STATUS = new Set([408, 429]);
/** Failures that another attempt cannot cure: the name does not resolve, or the server loops. */
const FINAL_ERRNO = new Set(['ENOTFOUND', 'ERR_TOO_MANY_REDIRECTS']);

/**
 * The one rule for --retry, used by every source and the download loop: connection failures, 5xx, 429
 * and 408, and bodies that break off, stall or end short are worth another attempt; any other answer of
 * the server (4xx: the object is not there, or not ours), a host that does not exist, and failures on this
 * host (a full disk) are final.
 */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof TransferError)) return false;
  const { stage, status, errno } = err.facts;
  if (stage === 'local') return false;
  if (status !== undefined) return status >= 500 || RETRY_STATUS.has(status);
  if (errno !== undefined && FINAL_ERRNO.has(errno)) return false;
  return true;
}

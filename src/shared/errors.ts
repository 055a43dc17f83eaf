/**
 * Every failure the user can cause or meet ends as a StretcherError: its message is the one line printed
 * on stderr and handed to failure commands as STRETCHER_ERROR. Anything else reaching the top is a bug.
 */
export class StretcherError extends Error {
  override name = 'StretcherError';
}

/** A bad command line: exit 2 and a pointer to --help. */
export class UsageError extends StretcherError {
  override name = 'UsageError';
}

/**
 * A failure worth another attempt (connection reset, 5xx, a body cut off). `retryAfterMs` carries a
 * server's Retry-After so that the wait honours it.
 */
export class RetryableError extends StretcherError {
  override name = 'RetryableError';
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** The deploy was interrupted by a signal; the exit status follows the shell's 128+n convention. */
export class InterruptedError extends StretcherError {
  override name = 'InterruptedError';
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

/** One line, whatever was thrown: multi-line tool output is folded so logs stay one event per line. */
export function errorMessage(err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  return raw.replace(/\s*\n\s*/g, ' | ').trim();
}

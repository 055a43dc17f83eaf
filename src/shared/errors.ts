/**
 * What went wrong, as a stable name: for tests, the state record (`error_code`), JSON logs and anyone
 * scripting around stretcher. The message is for people and may be reworded; the code is not.
 */
export type ErrorCode =
  // The command line, and what arrived on stdin.
  | 'USAGE'
  | 'INTERRUPTED'
  | 'EVENT_INVALID'
  | 'URL_INVALID'
  // The manifest.
  | 'MANIFEST_INVALID'
  | 'SIGNATURE_INVALID'
  | 'VERIFY_KEY_INVALID'
  // Transfers.
  | 'TRANSFER_FAILED'
  | 'TRANSFER_TIMEOUT'
  | 'TOO_LARGE'
  | 'CHECKSUM_MISMATCH'
  // Unpacking.
  | 'ARCHIVE_UNSUPPORTED'
  | 'ARCHIVE_CORRUPT'
  | 'ARCHIVE_HOSTILE'
  | 'ARCHIVE_LIMIT'
  | 'UNPACK_FAILED'
  // Commands, syncing, releases.
  | 'COMMAND_FAILED'
  | 'COMMAND_TIMEOUT'
  | 'HEALTH_FAILED'
  | 'SYNC_FAILED'
  | 'DEST_INVALID'
  | 'RELEASE_INVALID'
  // The host: locks, state, and directories another user could change.
  | 'LOCK_FAILED'
  | 'LOCK_TIMEOUT'
  | 'STATE_UNUSABLE'
  | 'UNTRUSTED_PATH'
  | 'REPLAYED_MANIFEST'
  // Fleets: talking to the Serf agent.
  | 'SERF_FAILED';

/**
 * Every failure the user can cause or meet ends as a StretcherError. Its one-line rendering
 * (errorMessage: the message, then its causes) is what is printed on stderr and handed to failure commands
 * as STRETCHER_ERROR. Anything else reaching the top is a bug.
 */
export class StretcherError extends Error {
  override name = 'StretcherError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A bad command line: exit 2 and a pointer to --help. */
export class UsageError extends StretcherError {
  override name = 'UsageError';
  constructor(
    message: string,
    /** The subcommand whose usage was wrong, so that the error can point at its help. */
    readonly command?: string,
  ) {
    super('USAGE', message);
  }
}

/** The deploy was interrupted by a signal; the exit status follows the shell's 128+n convention. */
export class InterruptedError extends StretcherError {
  override name = 'InterruptedError';
  constructor(readonly signal: NodeJS.Signals) {
    super('INTERRUPTED', `interrupted by ${signal}`);
  }
}

/**
 * One line, whatever was thrown: a StretcherError's message followed by its causes (`: ` between), a
 * system error with its code, and multi-line tool output folded so that logs stay one event per line.
 */
export function errorMessage(err: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  for (let e: unknown = err; e !== undefined && !seen.has(e) && parts.length < 8; e = e instanceof Error ? e.cause : undefined) {
    seen.add(e);
    const part = describeOne(e);
    // A library's error often wraps the system error it met, with the same words (got's ECONNREFUSED).
    if (parts.some((p) => p.includes(e instanceof Error ? e.message : part))) break;
    parts.push(part);
  }
  return parts
    .filter((p) => p !== '')
    .join(': ')
    .replace(/\s*\n\s*/g, ' | ')
    .trim();
}

function describeOne(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  // Node's own system errors start with their code already ("ENOENT: no such file..."); library errors
  // (got's "connect ECONNREFUSED 127.0.0.1:80") get it in front, as operators grep for it.
  if (err instanceof StretcherError || typeof code !== 'string' || err.message.startsWith(code)) return err.message;
  return `${code}: ${err.message}`;
}

/** The stable code of an error, or undefined for one that is not stretcher's (a bug, or a system error). */
export function errorCode(err: unknown): ErrorCode | undefined {
  return err instanceof StretcherError ? err.code : undefined;
}

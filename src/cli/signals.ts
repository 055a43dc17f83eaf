import type { EventEmitter } from 'node:events';
import { InterruptedError } from '../shared/errors.js';

/** Failure commands after a signal get this long before they are killed too. */
const CLEANUP_TIMEOUT_MS = 60_000;
/** After a signal, the process exits by this time whatever it is doing. */
const EXIT_AFTER_MS = CLEANUP_TIMEOUT_MS + 15_000;

export interface Signals {
  /** Aborted by the first SIGTERM, SIGINT or SIGHUP: the deploy stops. */
  signal: AbortSignal;
  /**
   * Aborted by a second signal, or when the failure commands have run for too long after the first.
   * Without a signal it never aborts: failure commands after an ordinary failure run to their end.
   */
  cleanupSignal: AbortSignal;
}

const EXIT_CODES: Record<string, number> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

/**
 * SIGTERM/SIGINT/SIGHUP abort the deploy; a second one, or `cleanupMs` after the first, also cuts the
 * failure commands short; and `exitAfterMs` after the first the process exits, whatever is stuck.
 */
export function createSignals(source: Pick<EventEmitter, 'on'>, cleanupMs = CLEANUP_TIMEOUT_MS, exitAfterMs = EXIT_AFTER_MS): Signals {
  const deployAbort = new AbortController();
  const cleanupAbort = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    source.on(sig, () => {
      if (deployAbort.signal.aborted) return cleanupAbort.abort(new InterruptedError(sig));
      deployAbort.abort(new InterruptedError(sig));
      // The bound on the failure commands starts now, not when the deploy did.
      setTimeout(() => cleanupAbort.abort(new InterruptedError(sig)), cleanupMs).unref();
      setTimeout(() => {
        process.stderr.write(`stretcher: still running ${Math.round(exitAfterMs / 1000)}s after ${sig}; exiting\n`);
        process.exit(EXIT_CODES[sig] ?? 143);
      }, exitAfterMs).unref();
    });
  }
  return { signal: deployAbort.signal, cleanupSignal: cleanupAbort.signal };
}

let installed: Signals | undefined;

export function installSignals(): Signals {
  installed ??= createSignals(process);
  return installed;
}

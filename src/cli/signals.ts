import { InterruptedError } from '../shared/errors.js';

/** Failure commands after a signal get this long before they are killed too. */
const CLEANUP_TIMEOUT_MS = 60_000;

export interface Signals {
  /** Aborted by the first SIGTERM, SIGINT or SIGHUP: the deploy stops. */
  signal: AbortSignal;
  /** Aborted by a second one, or when the failure commands have run for too long. */
  cleanupSignal: AbortSignal;
}

let installed: Signals | undefined;

/** SIGTERM/SIGINT abort the deploy; a second one also cuts the failure commands short. */
export function installSignals(): Signals {
  if (installed) return installed;
  const deployAbort = new AbortController();
  const cleanupAbort = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (!deployAbort.signal.aborted) deployAbort.abort(new InterruptedError(sig));
      else cleanupAbort.abort(new InterruptedError(sig));
    });
  }
  installed = { signal: deployAbort.signal, cleanupSignal: AbortSignal.any([cleanupAbort.signal, AbortSignal.timeout(CLEANUP_TIMEOUT_MS)]) };
  return installed;
}

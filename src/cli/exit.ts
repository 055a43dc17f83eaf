import { InterruptedError } from '../shared/errors.js';

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

/**
 * The exit status of a deploy handler. Under `consul watch` (CONSUL_INDEX set) it is always 0: a watch
 * stops watching when its handler fails, so a failed deploy is logged, its failure commands run and the
 * state records it, but the handler exits 0. Otherwise: 0 on success, 128+n after signal n (the shell's
 * convention), 1 for any other failure.
 */
export function deployExitStatus(failure: unknown | undefined, env: NodeJS.ProcessEnv): number {
  if (failure === undefined || underConsul(env)) return 0;
  if (failure instanceof InterruptedError) return 128 + (SIGNAL_NUMBERS[failure.signal] ?? 15);
  return 1;
}

export function underConsul(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.CONSUL_INDEX);
}

/** A command line stretcher cannot act on: one line naming the problem, exit 2. */
export function usageError(message: string, command?: string): number {
  process.stderr.write(`stretcher: ${message} (see stretcher ${command ? `help ${command}` : '--help'})\n`);
  return 2;
}

import { runCommands } from './hooks/run.js';
import { lockDest, type DestLock } from './host/lock.js';
import type { RunContext } from './shared/context.js';
import { errorMessage, StretcherError } from './shared/errors.js';
import type { ReleaseInfo, ReleaseStore } from './sync/release/store.js';

export interface RollbackOptions {
  store: ReleaseStore;
  /** The release to go to; undefined: the one live before the current one. */
  to?: string;
  /** Run the target release's recorded post and success commands (--no-hooks: false). */
  hooks: boolean;
  /** --command-timeout, when the target's manifest had no command_timeout. */
  commandTimeoutMs: number;
  context: RunContext;
  /** Bounds the failure commands after a signal. */
  cleanupSignal: AbortSignal;
  lock: { dir: () => Promise<string>; timeoutMs: number };
}

export interface RollbackOutcome {
  ok: boolean;
  error?: unknown;
  /** The release dest points at afterwards, when the switch happened. */
  release?: ReleaseInfo;
  /** Whether the switch happened (a failing post leaves dest on the target). */
  switched: boolean;
  durationMs: number;
}

/**
 * `stretcher rollback`: under the deploys' lock, dest is switched to the release that was live before
 * the current one (or --to's), and that release's own post and success commands run, as its deploy ran
 * them, with STRETCHER_ROLLBACK=1. A failing post runs its failure commands; dest stays on the target.
 * Never throws: the outcome says how it went.
 */
export async function rollback(opts: RollbackOptions): Promise<RollbackOutcome> {
  const started = performance.now();
  const { store, context } = opts;
  const { log } = context;
  let lock: DestLock | undefined;
  let target: ReleaseInfo | undefined;
  let switched = false;
  try {
    lock = await lockDest(store.dest, { dir: await opts.lock.dir(), timeoutMs: opts.lock.timeoutMs, log, signal: context.signal });
    await store.checkTrusted();
    await store.checkDest();
    const current = await store.current();
    const id = opts.to ?? (await defaultTarget(store, current));
    if (id === current) throw new StretcherError('RELEASE_INVALID', `release ${id} is already current at ${store.dest}; nothing to do`);
    await store.switchTo(id);
    await store.recordSwitch(current, id, 'rollback');
    switched = true;
    target = await store.info(id);
    log.info(`rolled ${store.dest} back to release ${id}${current ? ` (was ${current})` : ''}`);
    const env = restoredEnv(store, target, current, context.env);
    const hookError = opts.hooks ? await runHooks(target, { ...context, env }, opts) : undefined;
    return { ok: hookError === undefined, ...(hookError !== undefined ? { error: hookError } : {}), release: target, switched, durationMs: performance.now() - started };
  } catch (err) {
    log.error(`rollback failed: ${errorMessage(err)}`);
    return { ok: false, error: err, ...(target ? { release: target } : {}), switched, durationMs: performance.now() - started };
  } finally {
    await lock?.release();
  }
}

/** What a release's recorded hooks see once dest is switched back to it (from `from`), as a rollback runs them. */
export function restoredEnv(store: ReleaseStore, target: ReleaseInfo, from: string | undefined, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return {
    ...env,
    STRETCHER_ROLLBACK: '1',
    STRETCHER_DEST: store.dest,
    STRETCHER_RELEASE_DIR: target.dir,
    STRETCHER_PREVIOUS_RELEASE_DIR: from ? store.dirOf(from) : '',
    STRETCHER_CHECKSUM: target.checksum,
    STRETCHER_MANIFEST_URL: target.manifestUrl ?? '',
  };
}

/**
 * The recorded post commands of a release dest was switched back to (context.env: restoredEnv's), so the
 * restored release is started again: by `stretcher rollback`, and by a deploy whose health gate failed.
 * False when the release has none recorded (deployed by an older stretcher); throws when one fails.
 */
export async function runRestoredPost(target: ReleaseInfo, context: RunContext, commandTimeoutMs: number): Promise<boolean> {
  if (!target.hooks) return false;
  await runCommands(target.hooks.post, 'post', { ...context, timeoutMs: target.hooks.commandTimeoutMs ?? commandTimeoutMs });
  return true;
}

/** The release live before the current one; after an operator's rollback, refused with the way on. */
async function defaultTarget(store: ReleaseStore, current: string | undefined): Promise<string> {
  if (current === undefined) throw new StretcherError('RELEASE_INVALID', `no current release at ${store.dest} (stretcher releases --dest ${store.dest} lists them)`);
  const rolledBack = await store.rolledBackTo(current);
  if (rolledBack) {
    const undo = rolledBack.from ? `; to undo it: stretcher rollback --dest ${store.dest} --to ${rolledBack.from}` : '';
    throw new StretcherError(
      'RELEASE_INVALID',
      `${store.dest} is already rolled back to ${current}${rolledBack.from ? ` (from ${rolledBack.from})` : ''}, so another rollback would go forward again. To go further back, name the release: stretcher rollback --dest ${store.dest} --to ID (stretcher releases --dest ${store.dest} lists them)${undo}`,
    );
  }
  const previous = await store.previous(current);
  if (previous === undefined) throw new StretcherError('RELEASE_INVALID', `no release before ${current} in ${store.dir}`);
  return previous;
}

/**
 * The target's recorded post, then success (log on stdin). A failing post runs the failure commands and
 * is returned: the rollback failed, though dest stays on the target.
 */
async function runHooks(target: ReleaseInfo, context: RunContext, opts: RollbackOptions): Promise<unknown> {
  const { log } = context;
  const hooks = target.hooks;
  if (!hooks) {
    log.warn(`release ${target.id} has no recorded commands (deployed by an older stretcher): switched only`);
    return undefined;
  }
  const bounded = { ...context, timeoutMs: hooks.commandTimeoutMs ?? opts.commandTimeoutMs };
  try {
    await runRestoredPost(target, context, opts.commandTimeoutMs);
  } catch (err) {
    const message = errorMessage(err);
    log.error(`rollback failed: ${message} (${opts.store.dest} stays on release ${target.id})`);
    try {
      await runCommands(hooks.failure, 'failure', {
        ...bounded,
        env: { ...context.env, STRETCHER_ERROR: log.redactor.text(message) },
        signal: opts.cleanupSignal,
        input: log.text(),
      });
    } catch (failureErr) {
      log.warn(errorMessage(failureErr));
    }
    return err;
  }
  log.info(`rollback to ${target.id} succeeded`);
  try {
    await runCommands(hooks.success, 'success', { ...bounded, input: log.text() });
  } catch (err) {
    log.warn(`${errorMessage(err)}; the rollback itself succeeded`);
  }
  return undefined;
}

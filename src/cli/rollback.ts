import { StateStore } from '../host/state.js';
import { rollback } from '../rollback.js';
import { normalDest } from '../shared/dest.js';
import { errorCode, errorMessage } from '../shared/errors.js';
import { ReleaseStore } from '../sync/release/store.js';
import { deployExitStatus } from './exit.js';
import type { Invocation } from './flags.js';
import { commandLog } from './output.js';
import { installSignals } from './signals.js';

/**
 * `stretcher rollback --dest PATH [--to ID] [--no-hooks]`: one atomic switch and the target release's
 * hooks, under the same lock as deploys so it never races one, recorded in the state directory.
 */
export async function rollbackCommand({ values: opts }: Invocation, env: NodeJS.ProcessEnv): Promise<number> {
  const log = commandLog(opts, env);
  const signals = installSignals();
  const state = new StateStore(opts.stateDir, log);
  const store = ReleaseStore.forDest(normalDest(opts.dest as string), opts.releasesDir);
  const outcome = await rollback({
    store,
    ...(opts.to !== undefined ? { to: opts.to } : {}),
    hooks: !opts.noHooks,
    commandTimeoutMs: opts.commandTimeoutMs,
    context: { cwd: process.cwd(), env, log, signal: signals.signal },
    cleanupSignal: signals.cleanupSignal,
    lock: { dir: () => state.lockDir(), timeoutMs: opts.lockTimeoutMs },
  });
  if (outcome.switched && outcome.release) {
    const code = errorCode(outcome.error);
    await state.recordDeploy(
      {
        dest: store.dest,
        time: new Date().toISOString(),
        result: outcome.ok ? 'rollback' : 'failure',
        manifest_url: outcome.release.manifestUrl ?? '',
        checksum: outcome.release.checksum,
        release: outcome.release.id,
        duration_ms: Math.round(outcome.durationMs),
        ...(outcome.ok ? {} : { error: `rollback to ${outcome.release.id}: ${errorMessage(outcome.error)}`, ...(code ? { error_code: code } : {}) }),
      },
      log.text(),
    );
  }
  return deployExitStatus(outcome.ok ? undefined : outcome.error, {});
}

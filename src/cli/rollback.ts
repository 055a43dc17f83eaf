import { type DestLock, lockDest } from '../host/lock.js';
import { normalDest } from '../shared/dest.js';
import { StateStore } from '../host/state.js';
import { errorMessage } from '../shared/errors.js';
import { ReleaseStore } from '../sync/release/store.js';
import { commandLog } from './output.js';
import type { Invocation } from './flags.js';
import { installSignals } from './signals.js';

/**
 * `stretcher rollback --dest PATH [--to ID]`: one atomic switch, under the same lock as deploys so it never
 * races one, recorded in the state directory.
 */
export async function rollbackCommand({ values: opts }: Invocation, env: NodeJS.ProcessEnv): Promise<number> {
  const log = commandLog(opts, env);
  const state = new StateStore(opts.stateDir, log);
  const store = ReleaseStore.forDest(normalDest(opts.dest as string), opts.releasesDir);
  const started = performance.now();
  let lock: DestLock | undefined;
  try {
    lock = await lockDest(store.dest, { dir: await state.lockDir(), timeoutMs: opts.lockTimeoutMs, log, signal: installSignals().signal });
    await store.checkDest();
    const current = await store.current();
    const target = opts.to ?? (await store.previous(current));
    if (!target) {
      log.error(`rollback failed: ${current ? `no release older than ${current}` : 'no current release'} in ${store.dir}`);
      return 1;
    }
    if (target === current) {
      log.info(`release ${target} is already current at ${store.dest}`);
      return 0;
    }
    await store.switchTo(target);
    log.info(`rolled ${store.dest} back to release ${target}${current ? ` (was ${current})` : ''}`);
    const info = await store.info(target);
    await state.recordDeploy({
      dest: store.dest,
      time: new Date().toISOString(),
      result: 'rollback',
      manifest_url: info.manifestUrl ?? '',
      checksum: info.checksum,
      release: target,
      duration_ms: Math.round(performance.now() - started),
    });
    return 0;
  } catch (err) {
    log.error(`rollback failed: ${errorMessage(err)}`);
    return 1;
  } finally {
    await lock?.release();
  }
}

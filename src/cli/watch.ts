import type { KeyObject } from 'node:crypto';
import { deploy } from '../deploy.js';
import { StateStore } from '../host/state.js';
import { loadManifest } from '../manifest/load.js';
import { loadVerifyKeys } from '../manifest/signature.js';
import { errorMessage } from '../shared/errors.js';
import type { Location } from '../shared/location.js';
import { watch } from '../watch.js';
import { deployOptions, recordOutcome, transferSettings } from './deploy.js';
import { operandUrl } from './operand.js';
import { commandLog } from './output.js';
import type { Invocation } from './flags.js';
import { installSignals } from './signals.js';

/**
 * `stretcher watch URL`: runs until SIGTERM/SIGINT, then exits 0. Each deploy gets a log of its own, so
 * its success/failure commands receive that deploy's lines only.
 */
export async function watchCommand(inv: Invocation, env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = inv;
  const log = commandLog(values, env);
  const signals = installSignals();
  const state = new StateStore(values.stateDir, log);
  let verifyKeys: KeyObject[];
  let url: Location;
  try {
    verifyKeys = await loadVerifyKeys(values.verifyKeys);
    url = operandUrl(inv.operands[0] as string);
    await state.open();
  } catch (err) {
    log.error(errorMessage(err));
    return 1;
  }
  await watch({
    url,
    intervalMs: values.intervalMs,
    jitterMs: values.jitterMs ?? values.intervalMs / 10,
    log,
    signal: signals.signal,
    state,
    transfer: { ...transferSettings(values), signal: signals.signal, log, env },
    deploy: async (manifest) => {
      const deployLog = commandLog(values, env);
      const outcome = await deploy(url, await deployOptions(values, env, deployLog, signals, state, verifyKeys, inv.spelled), manifest);
      await recordOutcome(state, outcome, deployLog);
      return outcome;
    },
    gitSources: async (manifest) => {
      const loaded = await loadManifest(url, { ...transferSettings(values), signal: signals.signal, log, env }, verifyKeys, manifest).catch(() => undefined);
      return loaded?.manifest.archives.flatMap((a) => (a.kind === 'git' && !a.checksum ? [a.src] : [])) ?? [];
    },
  });
  return 0;
}

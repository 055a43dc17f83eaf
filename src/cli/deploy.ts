import type { KeyObject } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { deploy, type DeployOptions, type DeployOutcome } from '../deploy.js';
import { parseEvent, type DeployRequest } from '../event/parse.js';
import { readStdin } from '../event/stdin.js';
import { StateStore } from '../host/state.js';
import { ManifestError } from '../manifest/errors.js';
import { loadVerifyKeys } from '../manifest/signature.js';
import path from 'node:path';
import { errorCode, errorMessage, StretcherError } from '../shared/errors.js';
import type { Location } from '../shared/location.js';
import type { Log } from '../shared/log.js';
import { redactUrl } from '../shared/redact.js';
import { USER_AGENT, VERSION } from '../shared/version.js';
import { parseSourceUrl } from '../transfer/sources/index.js';
import { deployExitStatus, underConsul } from './exit.js';
import type { FlagValues, Invocation } from './flags.js';
import { operandUrl } from './operand.js';
import { commandLog } from './output.js';
import type { Requested } from './query.js';
import { installSignals, type Signals } from './signals.js';

/** Body inactivity after which a transfer counts as broken (and is retried). */
const STALL_MS = 60_000;

/** `stretcher` with no command: the manifest URL comes from stdin (a Consul or Serf handler, or a pipe). */
export async function stdinCommand(inv: Invocation, env: NodeJS.ProcessEnv): Promise<number> {
  const { values } = inv;
  const log = commandLog(values, env);
  const signals = installSignals();
  if (!(await randomDelay(values, log, signals))) return deployExitStatus(signals.signal.reason, env);
  if (process.stdin.isTTY) log.info('reading a manifest URL from stdin (for example s3://bucket/app/manifest.yml)...');
  let request: DeployRequest;
  try {
    request = parseEvent(await readStdin(process.stdin, env), env);
  } catch (err) {
    log.error(`deploy failed: ${errorMessage(err)}`);
    return deployExitStatus(err, env);
  }
  if (request.kind === 'query') return (await import('./query.js')).queryCommand(request, inv, env, signals, requestedDeploy);
  if (request.kind === 'nothing') {
    log.info(request.reason);
    // An empty array is what a watch sends when it starts: fine under consul, an error by hand.
    return request.origin === 'consul' && !underConsul(env) ? 1 : 0;
  }
  return runDeploy(request, inv, env, log, signals);
}

/** `stretcher deploy URL`. */
export async function deployCommand(inv: Invocation, env: NodeJS.ProcessEnv): Promise<number> {
  const log = commandLog(inv.values, env);
  const signals = installSignals();
  if (!(await randomDelay(inv.values, log, signals))) return deployExitStatus(signals.signal.reason, env);
  return runDeploy({ kind: 'deploy', url: inv.operands[0] as string, origin: 'the command line' }, inv, env, log, signals);
}

/** --random-delay: false when a signal ended the sleep. */
async function randomDelay(values: Pick<FlagValues, 'randomDelayMs'>, log: Log, signals: Signals): Promise<boolean> {
  if (values.randomDelayMs <= 0) return true;
  const ms = Math.random() * values.randomDelayMs;
  log.info(`sleeping ${Math.round(ms)}ms (--random-delay)`);
  try {
    await sleep(ms, undefined, { signal: signals.signal });
    return true;
  } catch {
    log.error('deploy failed: interrupted while sleeping (--random-delay)');
    return false;
  }
}

async function runDeploy(request: Extract<DeployRequest, { kind: 'deploy' }>, inv: Invocation, env: NodeJS.ProcessEnv, log: Log, signals: Signals): Promise<number> {
  const ran = await requestedDeploy(request, inv, env, log, signals);
  if (ran.kind === 'refused') return deployExitStatus(ran.error, env);
  if (ran.kind === 'skipped') return 0;
  if (!ran.outcome.ok && underConsul(env)) log.info('exiting 0 despite the failure: consul watch stops watching when its handler fails');
  return deployExitStatus(ran.outcome.ok ? undefined : ran.outcome.error, env);
}

/** A deploy asked for by an event, the command line or a Serf query: run, and recorded in the state directory. */
export async function requestedDeploy(request: Extract<DeployRequest, { kind: 'deploy' }>, inv: Invocation, env: NodeJS.ProcessEnv, log: Log, signals: Signals): Promise<Requested> {
  const { values } = inv;
  const state = new StateStore(values.stateDir, log);
  const what = request.eventName ? `${request.origin} event ${JSON.stringify(request.eventName)}` : request.origin;
  log.info(`stretcher ${VERSION}: deploy requested by ${what}${request.eventId ? ` (event ID ${request.eventId})` : ''}`, { url: redactUrl(request.url) });
  let verifyKeys: KeyObject[];
  let location: Location;
  try {
    location = request.origin === 'the command line' ? operandUrl(request.url) : eventUrl(request.url);
    verifyKeys = await loadVerifyKeys(values.verifyKeys);
    await state.open();
  } catch (err) {
    log.error(`deploy failed: ${errorMessage(err)}`);
    return { kind: 'refused', error: err };
  }
  if (request.eventId && (await state.hasHandledEvent(request.eventId))) {
    log.info(`Consul event ${request.eventId} was already handled; skipping (consul watch re-sends its buffer on restart)`);
    return { kind: 'skipped' };
  }
  const outcome = await deploy(location, await deployOptions(values, env, log, signals, state, verifyKeys, inv.spelled));
  if (request.eventId) await state.rememberEvent(request.eventId);
  await recordOutcome(state, outcome, log, request.eventId);
  return { kind: 'ran', outcome };
}

/**
 * A URL that arrived on stdin (a Consul or Serf event, a pipe): a relative path there would mean the
 * handler's working directory, which nobody chose, so it is refused with the URL that was probably meant.
 */
function eventUrl(text: string): Location {
  try {
    return parseSourceUrl(text);
  } catch (err) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(text)) throw err;
    throw new StretcherError('URL_INVALID', `${JSON.stringify(text)} is not a URL; a manifest URL on stdin must be absolute: file://${path.resolve(text)}, s3://..., https://...`);
  }
}

export function transferSettings(values: FlagValues): DeployOptions['transfer'] {
  return {
    retry: values.retry,
    retryWaitMs: values.retryWaitMs,
    timeoutMs: values.timeoutMs,
    stallMs: STALL_MS,
    userAgent: USER_AGENT,
    ...(values.maxBandwidth ? { maxBandwidth: values.maxBandwidth } : {}),
  };
}

export async function deployOptions(
  values: FlagValues,
  env: NodeJS.ProcessEnv,
  log: Log,
  signals: Signals,
  state: StateStore,
  verifyKeys: KeyObject[],
  spelled: Invocation['spelled'] = {},
): Promise<DeployOptions> {
  return {
    transfer: transferSettings(values),
    limits: {
      maxBytes: values.maxUnpackBytes,
      maxEntries: values.maxUnpackEntries,
      flags: { bytes: spelled.maxUnpackBytes ?? '--max-unpack-size', entries: spelled.maxUnpackEntries ?? '--max-unpack-entries' },
    },
    // --rsync-verbose asks for rsync's own output: then the rsync program does the sync.
    strategies: { rsync: { verbose: values.rsyncVerbose, program: spelled.rsyncVerbose !== undefined }, release: { force: values.force } },
    context: { cwd: process.cwd(), env, log, signal: signals.signal },
    cleanupSignal: signals.cleanupSignal,
    lock: { dir: () => state.lockDir(), timeoutMs: values.lockTimeoutMs },
    verifyKeys,
    previousDeploy: async (dest) => {
      const record = await state.lastDeploy(dest);
      const last = record?.last_success;
      return {
        ...(last ? { manifestUrl: last.manifest_url } : {}),
        ...(last?.checksum ? { checksum: last.checksum } : {}),
        ...(record?.highest_serial !== undefined ? { highestSerial: record.highest_serial } : {}),
      };
    },
    serialsRecorded: state.recordable,
    commandTimeoutMs: values.commandTimeoutMs,
    gitCacheDir: () => state.gitCacheDir(),
  };
}

function failureCode(err: unknown): { error_code?: string } {
  const code = errorCode(err);
  return code ? { error_code: code } : {};
}

/** The deploy's record and its log, for `status` and `status --log`. */
export async function recordOutcome(state: StateStore, outcome: DeployOutcome, log: Log, eventId?: string): Promise<void> {
  const { manifest } = outcome;
  // An invalid manifest that still names a valid dest: its failure is that dest's latest deploy too, or
  // `status` would go on showing the previous success.
  const invalid = !manifest && outcome.error instanceof ManifestError && outcome.error.dest ? outcome.error : undefined;
  const dest = manifest?.dest ?? invalid?.dest;
  if (!dest) return;
  await state.recordDeploy(
    {
      dest,
      time: new Date().toISOString(),
      result: outcome.ok ? 'success' : 'failure',
      manifest_url: manifest?.url.shown ?? (invalid?.where as string),
      ...(manifest?.identity ? { checksum: manifest.identity } : {}),
      ...(manifest?.binding.serial !== undefined ? { serial: manifest.binding.serial } : {}),
      ...(eventId ? { event_id: eventId } : {}),
      ...(outcome.release ? { release: outcome.release } : {}),
      duration_ms: Math.round(outcome.durationMs),
      ...(outcome.ok ? {} : { error: errorMessage(outcome.error), ...failureCode(outcome.error) }),
    },
    log.text(),
  );
}

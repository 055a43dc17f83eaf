import type { KeyObject } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { deploy, type DeployOptions, type DeployOutcome } from '../deploy.js';
import { errorMessage, InterruptedError, StretcherError } from '../shared/errors.js';
import { MAX_EVENT_BYTES, parseEvent, type DeployRequest } from '../event/parse.js';
import { Log, secretValues } from '../shared/log.js';
import { loadVerifyKeys } from '../manifest/signature.js';
import type { Options } from './flags.js';
import { redactUrl } from '../shared/redact.js';
import { releasesCommand, rollbackCommand } from './releases.js';
import { parseSourceUrl } from '../transfer/sources/index.js';
import { StateStore } from '../host/state.js';
import { statusCommand } from './status.js';
import { validateCommand } from './validate.js';
import { USER_AGENT, VERSION } from '../shared/version.js';
import { watch } from '../watch.js';

/** Failure commands after a signal get this long before they are killed too. */
const CLEANUP_TIMEOUT_MS = 60_000;
/** Body inactivity after which a transfer counts as broken (and is retried). */
const STALL_MS = 60_000;

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 };

/**
 * Everything but --help and --version: loaded by cli.ts only when there is work to do, so that those two
 * answer without loading the deploy machinery.
 */
export async function dispatch(opts: Options, env: NodeJS.ProcessEnv): Promise<number> {
  const log = new Log(opts.logFormat);
  log.addSecrets(secretValues(env));
  const [command, ...operands] = opts.positionals;
  if (command === 'releases' || command === 'rollback') {
    if (operands.length) return usageError(`${command} takes no operands (use --dest PATH)`);
    if (!opts.dest) return usageError(`${command} needs --dest PATH (the dest symlink)`);
    const state = new StateStore(opts.stateDir, log);
    if (command === 'releases') return releasesCommand(opts.dest, opts);
    return rollbackCommand(opts.dest, opts, { log, state, lockDir: await state.lockDir(), signal: installSignals().signal });
  }
  if (command === 'status') {
    if (operands.length) return usageError('status takes no operands (use --dest PATH)');
    return statusCommand(new StateStore(opts.stateDir, log), opts);
  }
  if (command === 'validate') {
    if (operands.length === 0) return usageError('validate needs at least one manifest (a path or URL)');
    return validateCommand(operands, env, log);
  }
  if (command === 'deploy') {
    if (operands.length !== 1) return usageError('deploy takes exactly one manifest URL');
    return runDeploy({ kind: 'deploy', url: operands[0] as string, origin: 'the command line' }, opts, env, log);
  }
  if (command === 'watch') {
    if (operands.length !== 1) return usageError('watch takes exactly one manifest URL');
    return runWatch(operands[0] as string, opts, env, log);
  }
  if (command !== undefined) return usageError(`unknown command ${JSON.stringify(command)}`);
  return runFromStdin(opts, env, log);
}

export function usageError(message: string): number {
  process.stderr.write(`stretcher: ${message} (see stretcher --help)\n`);
  return 2;
}

interface Signals {
  signal: AbortSignal;
  cleanupSignal: AbortSignal;
}

/** SIGTERM/SIGINT abort the deploy; a second one also cuts the failure commands short. */
function installSignals(): Signals {
  const deployAbort = new AbortController();
  const cleanupAbort = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (!deployAbort.signal.aborted) deployAbort.abort(new InterruptedError(sig));
      else cleanupAbort.abort(new InterruptedError(sig));
    });
  }
  return { signal: deployAbort.signal, cleanupSignal: AbortSignal.any([cleanupAbort.signal, AbortSignal.timeout(CLEANUP_TIMEOUT_MS)]) };
}

async function runFromStdin(opts: Options, env: NodeJS.ProcessEnv, log: Log): Promise<number> {
  const signals = installSignals();
  const consul = Boolean(env.CONSUL_INDEX);
  if (opts.randomDelayMs > 0) {
    const ms = Math.random() * opts.randomDelayMs;
    log.info(`sleeping ${Math.round(ms)}ms (--random-delay)`);
    try {
      await sleep(ms, undefined, { signal: signals.signal });
    } catch {
      log.error(`interrupted while sleeping`);
      return exitFor(signals.signal.reason, consul);
    }
  }
  if (process.stdin.isTTY) log.info('reading a manifest URL from stdin (for example s3://bucket/app/manifest.yml)...');
  let request: DeployRequest;
  try {
    request = parseEvent(await readStdin(env), env);
  } catch (err) {
    log.error(errorMessage(err));
    return consul ? 0 : 1;
  }
  if (request.kind === 'nothing') {
    log.info(request.reason);
    // An empty array is what a watch sends when it starts: fine under consul, an error by hand.
    return request.origin === 'consul' && !consul ? 1 : 0;
  }
  return runDeploy(request, opts, env, log, signals);
}

async function runDeploy(
  request: Extract<DeployRequest, { kind: 'deploy' }>,
  opts: Options,
  env: NodeJS.ProcessEnv,
  log: Log,
  signals = installSignals(),
): Promise<number> {
  const consul = Boolean(env.CONSUL_INDEX);
  const state = new StateStore(opts.stateDir, log);
  const what = request.eventName ? `${request.origin} event ${JSON.stringify(request.eventName)}` : request.origin;
  log.info(`stretcher ${VERSION}: deploy requested by ${what}${request.eventId ? ` (event ID ${request.eventId})` : ''}`, {
    url: redactUrl(request.url),
  });
  let verifyKeys: KeyObject[];
  try {
    verifyKeys = await loadVerifyKeys(opts.verifyKeys);
  } catch (err) {
    log.error(`deploy failed: ${errorMessage(err)}`);
    return consul ? 0 : 1;
  }
  if (request.eventId && (await state.hasHandledEvent(request.eventId))) {
    log.info(`Consul event ${request.eventId} was already handled; skipping (consul watch re-sends its buffer on restart)`);
    return 0;
  }
  const outcome = await deploy(request.url, await deployOptions(opts, env, log, signals, state, verifyKeys));
  if (request.eventId) await state.rememberEvent(request.eventId);
  await recordOutcome(state, outcome, request.eventId);
  if (outcome.ok) return 0;
  if (consul) {
    log.info('exiting 0 despite the failure: consul watch stops watching when its handler fails');
    return 0;
  }
  return exitFor(outcome.error, false);
}

function transferOptions(opts: Options): DeployOptions['transfer'] {
  return {
    retry: opts.retry,
    retryWaitMs: opts.retryWaitMs,
    timeoutMs: opts.timeoutMs,
    stallMs: STALL_MS,
    userAgent: USER_AGENT,
    ...(opts.maxBandwidth ? { maxBandwidth: opts.maxBandwidth } : {}),
  };
}

async function deployOptions(opts: Options, env: NodeJS.ProcessEnv, log: Log, signals: Signals, state: StateStore, verifyKeys: KeyObject[]): Promise<DeployOptions> {
  return {
    transfer: transferOptions(opts),
    limits: { maxBytes: opts.maxExtractBytes, maxEntries: opts.maxExtractEntries },
    rsyncVerbose: opts.rsyncVerbose,
    cwd: process.cwd(),
    env,
    log,
    signal: signals.signal,
    cleanupSignal: signals.cleanupSignal,
    lock: { dir: await state.lockDir(), timeoutMs: opts.lockTimeoutMs },
    verifyKeys,
    force: opts.force,
    previousDeploy: async (dest) => {
      const last = (await state.lastDeploy(dest))?.last_success;
      return last ? { manifestUrl: last.manifest_url, ...(last.checksum ? { checksum: last.checksum } : {}) } : undefined;
    },
  };
}

async function recordOutcome(state: StateStore, outcome: DeployOutcome, eventId?: string): Promise<void> {
  const { manifest } = outcome;
  if (!manifest?.dest) return;
  await state.recordDeploy({
    dest: manifest.dest,
    time: new Date().toISOString(),
    result: outcome.ok ? 'success' : 'failure',
    manifest_url: manifest.url.shown,
    ...(manifest.identity ? { checksum: manifest.identity } : {}),
    ...(eventId ? { event_id: eventId } : {}),
    ...(outcome.release ? { release: outcome.release } : {}),
    duration_ms: Math.round(outcome.durationMs),
    ...(outcome.ok ? {} : { error: errorMessage(outcome.error) }),
  });
}

/**
 * `stretcher watch URL`: runs until SIGTERM/SIGINT, then exits 0. Each deploy gets a log of its own, so
 * its success/failure commands receive that deploy's lines only.
 */
async function runWatch(url: string, opts: Options, env: NodeJS.ProcessEnv, log: Log): Promise<number> {
  const signals = installSignals();
  const state = new StateStore(opts.stateDir, log);
  let verifyKeys: KeyObject[];
  try {
    verifyKeys = await loadVerifyKeys(opts.verifyKeys);
    parseSourceUrl(url);
  } catch (err) {
    log.error(errorMessage(err));
    return 1;
  }
  await watch({
    url,
    intervalMs: opts.intervalMs,
    jitterMs: opts.jitterMs ?? opts.intervalMs / 10,
    log,
    signal: signals.signal,
    state,
    transfer: { ...transferOptions(opts), signal: signals.signal, log, env },
    deploy: async (manifest) => {
      const deployLog = new Log(opts.logFormat);
      deployLog.addSecrets(secretValues(env));
      const outcome = await deploy(url, await deployOptions(opts, env, deployLog, signals, state, verifyKeys), manifest);
      await recordOutcome(state, outcome);
      return outcome;
    },
  });
  return 0;
}

function exitFor(err: unknown, consul: boolean): number {
  if (consul) return 0;
  if (err instanceof InterruptedError) return 128 + (SIGNAL_NUMBERS[err.signal] ?? 15);
  return 1;
}

/**
 * Reads stdin up to MAX_EVENT_BYTES. A raw URL needs only its first non-empty line, so reading stops there
 * (an ssh session may keep stdin open); Consul's JSON is read to the end.
 */
async function readStdin(env: NodeJS.ProcessEnv): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const buf = chunk as Buffer;
    chunks.push(buf);
    size += buf.length;
    if (size > MAX_EVENT_BYTES) throw new StretcherError('EVENT_INVALID', `stdin is larger than ${MAX_EVENT_BYTES} bytes: that is not an event`);
    const text = Buffer.concat(chunks).toString('utf8');
    const json = env.CONSUL_INDEX || text.trimStart().startsWith('[');
    if (!json && /\S[^\n]*\n/.test(text)) break;
  }
  return Buffer.concat(chunks);
}


import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExtractLimits } from './unpack/unpacker.js';
import { runCommands, type RunOptions } from './hooks/run.js';
import { downloadVerified, fileSink, type Fetched, type TransferOptions } from './transfer/download.js';
import { formatDuration } from './shared/duration.js';
import { errorMessage, StretcherError } from './shared/errors.js';
import { lockDest, type DestLock } from './host/lock.js';
import type { Log } from './shared/log.js';
import { ManifestError } from './manifest/errors.js';
import { loadManifest } from './manifest/load.js';
import type { Archive, Manifest } from './manifest/types.js';
import { removeTree } from './host/remove-tree.js';
import { parseSourceUrl } from './transfer/sources/index.js';
import { strategyFor } from './sync/index.js';
import { recoverDebris, removeDeadDebris, WORK_DEBRIS } from './sync/debris.js';

export interface DeployOptions {
  transfer: Omit<TransferOptions, 'signal' | 'log' | 'env'>;
  limits: ExtractLimits;
  rsyncVerbose: string;
  /** Every command runs here: the directory stretcher was started in. */
  cwd: string;
  env: NodeJS.ProcessEnv;
  log: Log;
  /** The deploy's signal: a SIGTERM aborts whatever step is running. */
  signal: AbortSignal;
  /** Bounds the failure commands that run after an abort (a second signal, or their time limit). */
  cleanupSignal: AbortSignal;
  /** Where per-dest locks live, and how long to wait for another deploy to the same dest. */
  lock: { dir: string; timeoutMs: number };
  /** Ed25519 keys; when any are given, only manifests signed by one of them are deployed. */
  verifyKeys: readonly KeyObject[];
  /** Deploy even what is already current (release strategy). */
  force: boolean;
  /** The last successful deploy to a dest, from the state directory (hooks see it as "previous"). */
  previousDeploy: (dest: string) => Promise<{ checksum?: string; manifestUrl?: string } | undefined>;
}

export interface DeployOutcome {
  ok: boolean;
  /** release strategy: the release dest points at afterwards. */
  release?: string;
  error?: unknown;
  manifest?: Manifest;
  durationMs: number;
}

const WORK_PREFIX = 'stretcher-';

/**
 * One deploy, in Go stretcher's order: manifest -> (no src: pre, post) -> download and verify -> pre ->
 * unpack -> dest_mode -> sync -> post -> remove temp files -> success or failure commands, the log on stdin.
 * Never throws: the outcome says how it went, and the failure commands have already run.
 */
export async function deploy(manifestUrl: string, opts: DeployOptions, prefetched?: Fetched): Promise<DeployOutcome> {
  let lock: DestLock | undefined;
  try {
    return await deployLocked(manifestUrl, opts, (l) => (lock = l), prefetched);
  } finally {
    await lock?.release();
  }
}

async function deployLocked(manifestUrl: string, opts: DeployOptions, onLock: (lock: DestLock) => void, prefetched?: Fetched): Promise<DeployOutcome> {
  const { log } = opts;
  const started = performance.now();
  const transfer: TransferOptions = { ...opts.transfer, signal: opts.signal, log, env: opts.env };
  let manifest: Manifest | undefined;
  let failureCommands: readonly string[] = [];
  let workDir: string | undefined;
  let staging: string | undefined;
  let error: unknown;
  let rolledBack = false;
  let release: string | undefined;
  let env: NodeJS.ProcessEnv = { ...opts.env };
  const run = (env: NodeJS.ProcessEnv): Omit<RunOptions, 'label'> => ({ cwd: opts.cwd, env, log, signal: opts.signal });

  try {
    const location = parseSourceUrl(manifestUrl);
    log.info(`loading manifest ${location}`);
    const loaded = await loadManifest(location, transfer, opts.verifyKeys, prefetched);
    manifest = loaded.manifest;
    for (const w of loaded.warnings) log.warn(w);
    failureCommands = manifest.commands.failure;
    const previous = manifest.dest ? await opts.previousDeploy(manifest.dest) : undefined;
    env = {
      ...hookEnv(manifest, opts.env),
      STRETCHER_PREVIOUS_CHECKSUM: previous?.checksum ?? '',
      STRETCHER_PREVIOUS_MANIFEST_URL: previous?.manifestUrl ?? '',
    };
    // Held until the success/failure commands are done: two deploys to one dest never interleave.
    if (manifest.dest) onLock(await lockDest(manifest.dest, { ...opts.lock, log, signal: opts.signal }));
    if (manifest.archives.length === 0 || !manifest.dest || !manifest.identity) {
      log.info('no src in the manifest: running commands only');
      await runCommands(manifest.commands.pre, 'pre', run(env));
      await runCommands(manifest.commands.post, 'post', run(env));
    } else {
      const target = { ...manifest, dest: manifest.dest, identity: manifest.identity };
      const strategy = strategyFor(target, { force: opts.force, log });
      const prepared = (await strategy.prepare?.()) ?? {};
      if (prepared.alreadyCurrent) {
        log.info(prepared.alreadyCurrent);
        return { ok: true, manifest, durationMs: performance.now() - started, ...(prepared.release ? { release: prepared.release } : {}) };
      }
      Object.assign(env, prepared.env);
      release = prepared.release;
      await removeDeadDebris(tmpdir(), WORK_DEBRIS, log);
      await recoverDebris(manifest.dest, log);
      workDir = await mkdtemp(path.join(tmpdir(), `${WORK_PREFIX}${process.pid}-`));
      staging = await strategy.createStaging(manifest.dest, workDir);
      await unpackArchives(manifest.archives, staging, workDir, transfer, opts.limits, log);
      // pre runs once the archive is verified and unpacked, and before anything changes at dest.
      await runCommands(manifest.commands.pre, 'pre', run(env));
      await chmod(staging, manifest.destMode);
      // The last moment to stop with dest untouched: a signal during the steps above ends the deploy here.
      opts.signal.throwIfAborted();
      const synced = await strategy.sync({
        staging,
        dest: manifest.dest,
        excludes: manifest.excludes,
        ...(manifest.excludeFrom !== undefined ? { excludeFrom: manifest.excludeFrom } : {}),
        rsyncVerbose: opts.rsyncVerbose,
        log,
        signal: opts.signal,
        cwd: opts.cwd,
        env,
      });
      try {
        await runCommands(manifest.commands.post, 'post', run(env));
      } catch (err) {
        if (synced.rollback && manifest.rollbackOnFailure) rolledBack = await rollBack(synced.rollback, log);
        if (rolledBack) release = prepared.previous;
        throw err;
      }
    }
  } catch (err) {
    error = err;
    if (err instanceof ManifestError && err.failureCommands) failureCommands = err.failureCommands;
  } finally {
    // Temp files go on every path, before success/failure commands run (as in Go stretcher).
    if (staging) await removeTree(staging).catch(() => {});
    if (workDir) await rm(workDir, { recursive: true, force: true }).catch(() => {});
  }

  const durationMs = performance.now() - started;
  if (error === undefined) {
    log.info(`deploy succeeded in ${formatDuration(durationMs)}`, { duration_ms: Math.round(durationMs) });
    try {
      await runCommands(manifest?.commands.success ?? [], 'success', { ...run(env), input: log.text() });
    } catch (err) {
      // The deploy itself succeeded; a broken notification must not turn it into a failure.
      log.warn(`${errorMessage(err)}; the deploy itself succeeded`);
    }
    return { ok: true, ...(manifest ? { manifest } : {}), ...(release ? { release } : {}), durationMs };
  }

  const message = errorMessage(error);
  log.error(`deploy failed: ${message}`);
  // System errors (ENOSPC, EACCES on TMPDIR...) are the machine's, and their message says what; anything
  // else that is not ours is a bug, reported with its stack folded onto one line.
  const systemError = typeof (error as NodeJS.ErrnoException | undefined)?.code === 'string';
  if (!(error instanceof StretcherError) && !systemError) {
    log.error(`this is a bug in stretcher; please report it with this log: ${errorMessage((error as Error)?.stack ?? String(error))}`);
  }
  if (failureCommands.length) {
    const failureEnv = { ...env, STRETCHER_ERROR: message, ...(rolledBack ? { STRETCHER_ROLLED_BACK: '1' } : {}) };
    try {
      await runCommands(failureCommands, 'failure', { ...run(failureEnv), signal: opts.cleanupSignal, input: log.text() });
    } catch (err) {
      log.warn(errorMessage(err));
    }
  }
  return { ok: false, error, ...(manifest ? { manifest } : {}), durationMs };
}

/**
 * Downloads, verifies and unpacks into `staging`. One archive streams straight into the extractor; layers
 * are each downloaded and verified to a file first, so that retrying one never disturbs the others, and
 * then unpacked in order into the same tree, a later layer's files replacing an earlier one's.
 */
async function unpackArchives(archives: readonly Archive[], staging: string, workDir: string, transfer: TransferOptions, limits: ExtractLimits, log: Log): Promise<void> {
  // node-tar is loaded only by deploys that unpack something.
  const { createExtractor } = await import('./unpack/unpacker.js');
  const spool = path.join(workDir, 'spool');
  const [only] = archives;
  if (archives.length === 1 && only) {
    let attempt = 0;
    await downloadVerified(only.src, only.checksum, transfer, async (size) => {
      // A retry starts again from an empty tree.
      if (attempt++ > 0) await emptyDir(staging);
      return createExtractor(staging, limits, log, spool, size);
    });
    return;
  }
  const files: string[] = [];
  for (const [i, layer] of archives.entries()) {
    log.info(`layer ${i + 1} of ${archives.length}: ${layer.src}`);
    files.push(await downloadVerified(layer.src, layer.checksum, transfer, async () => fileSink(path.join(workDir, `layer-${i}`))));
  }
  for (const file of files) {
    const extractor = createExtractor(staging, limits, log, spool, (await stat(file)).size);
    try {
      await pipeline(createReadStream(file), extractor.sink, { signal: transfer.signal });
    } catch (err) {
      await extractor.close();
      throw err;
    }
    await extractor.finish();
    await rm(file, { force: true });
  }
  log.info(`merged ${archives.length} layers`);
}

/** A failed post under the release strategy: dest goes back to what it was before the failure commands run. */
async function rollBack(rollback: () => Promise<string>, log: Log): Promise<boolean> {
  try {
    log.warn(`post failed: rolled back to ${await rollback()}`);
    return true;
  } catch (err) {
    log.error(`rollback failed: ${errorMessage(err)}`);
    return false;
  }
}

/** What hook commands learn about the deploy, on top of stretcher's own environment (SERF_* included). */
function hookEnv(manifest: Manifest | undefined, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (!manifest) return { ...base };
  return {
    ...base,
    STRETCHER_MANIFEST_URL: manifest.url.shown,
    // Layers: space-separated, in order.
    STRETCHER_SRC: manifest.archives.map((a) => a.src.shown).join(' '),
    STRETCHER_DEST: manifest.dest ?? '',
    STRETCHER_CHECKSUM: manifest.archives.map((a) => a.checksum.hex).join(' '),
  };
}


async function emptyDir(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await rm(path.join(dir, name), { recursive: true, force: true });
}

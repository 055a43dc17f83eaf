import type { KeyObject } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hookEnv, type PreviousDeploy } from './hooks/env.js';
import { awaitHealthy, HealthError } from './hooks/health.js';
import { runCommands } from './hooks/run.js';
import { fetchCommit, type FetchedCommit } from './host/git-cache.js';
import { lockDest, type DestLock } from './host/lock.js';
import { removeTree } from './host/remove-tree.js';
import { removeStaging } from './sync/staging.js';
import { checkTrustedDir } from './host/trust.js';
import { checkBinding, checkGitPinned, ReplayError } from './manifest/binding.js';
import { ManifestError } from './manifest/errors.js';
import { loadManifest } from './manifest/load.js';
import type { Archive, Manifest } from './manifest/types.js';
import { identityOf } from './manifest/validate.js';
import type { RunContext } from './shared/context.js';
import { formatDuration } from './shared/duration.js';
import { errorMessage, StretcherError } from './shared/errors.js';
import type { Location } from './shared/location.js';
import { WORK_DEBRIS, workDirPrefix } from './host/paths.js';
import { restoredEnv, runRestoredPost } from './rollback.js';
import { ReleaseStore } from './sync/release/store.js';
import { recoverDebris, removeDeadDebris } from './sync/debris.js';
import { strategyFor, type StrategyOptions, type Synced, type SyncStrategy } from './sync/index.js';
import { StaleKeptError } from './sync/kept.js';
import type { Compared } from './shared/kept.js';
import type { Fetched, TransferOptions } from './transfer/download.js';
import { GitError } from './transfer/git/run.js';
import type { GitSource } from './transfer/git/source.js';
import type { GitTree } from './unpack/git-tree.js';
import type { UnpackLimits } from './unpack/unpacker.js';

export interface DeployOptions {
  /** Retries, timeouts and the bandwidth limit of every transfer. */
  transfer: Omit<TransferOptions, 'signal' | 'log' | 'env'>;
  limits: UnpackLimits;
  strategies: StrategyOptions;
  /** Where commands run, with what environment and log; the signal is SIGTERM's and aborts any step. */
  context: RunContext;
  /** Bounds the failure commands that run after an abort (a second signal, or their time limit). */
  cleanupSignal: AbortSignal;
  /** Where per-dest locks live (found when needed: it may be refused), and how long to wait for another deploy to the same dest. */
  lock: { dir: () => Promise<string>; timeoutMs: number };
  /** Ed25519 keys; when any are given, only manifests signed by one of them are deployed. */
  verifyKeys: readonly KeyObject[];
  /** The last successful deploy to a dest, from the state directory (hooks see it as "previous"). */
  previousDeploy: (dest: string) => Promise<PreviousDeploy | undefined>;
  /** Whether the state directory can record serials: without it, a signed deploy is refused. */
  serialsRecorded: boolean;
  /** --command-timeout: each hook command's limit (0: none); the manifest's command_timeout wins. */
  commandTimeoutMs: number;
  /** The git cache's directory (the state directory's git/), or undefined: a private one for this deploy. */
  gitCacheDir: () => Promise<string | undefined>;
}

export interface DeployOutcome {
  ok: boolean;
  /** release strategy: the release dest points at afterwards (after a failure, only once dest was switched). */
  release?: string;
  error?: unknown;
  manifest?: Manifest;
  /** The git sources without a checksum and the commits their refs resolved to (watch follows them). */
  unpinned?: { source: GitSource; commit: string }[];
  durationMs: number;
}

/**
 * One deploy, in Go stretcher's order: load the manifest, lock dest, then (with something to unpack)
 * prepare, stage (download, verify, unpack), pre, sync, post; or, commands only, pre and post. Temp files
 * go, then the success or failure commands run with the log on stdin, and the lock is released.
 * Never throws: the outcome says how it went.
 */
export async function deploy(location: Location, opts: DeployOptions, prefetched?: Fetched): Promise<DeployOutcome> {
  const run = new DeployRun(location, opts);
  try {
    try {
      await run.load(prefetched);
      await run.lock();
      if (run.commandsOnly) {
        await run.pre();
        await run.post();
      } else if ((await run.resolve()) && (await run.prepare())) {
        await run.stage();
        await run.pre();
        await run.sync();
        await run.post();
        await run.settle();
      }
    } catch (err) {
      run.failed(err);
    } finally {
      await run.cleanUp();
    }
    return await run.report();
  } finally {
    await run.unlock();
  }
}

/** The state of one deploy as its phases go by. */
class DeployRun {
  private readonly started = performance.now();
  private readonly transfer: TransferOptions;
  private manifest: Manifest | undefined;
  /** Hook commands' environment: stretcher's own, then what the manifest and strategy add. */
  private env: NodeJS.ProcessEnv;
  private failureCommands: readonly string[] = [];
  private destLock: DestLock | undefined;
  private strategy: SyncStrategy | undefined;
  private workDir: string | undefined;
  private staging: string | undefined;
  /** What unpacking found comparing with dest: what it left out of staging because dest had it. */
  private compared: Compared | undefined;
  private synced: Synced | undefined;
  private release: string | undefined;
  /** Set when there was nothing to do (the release strategy's "already current"). */
  private current = false;
  private error: unknown;
  private rolledBack = false;
  private previous: PreviousDeploy | undefined;
  /** Git commits fetched into their caches, locked there until they are unpacked. */
  private fetched: FetchedCommit[] = [];
  private gitTrees: GitTree[] = [];
  private unpinned: { source: GitSource; commit: string }[] = [];
  /** A private git cache for this deploy alone, when the state directory has none. */
  private gitTemp: string | undefined;

  constructor(
    private readonly location: Location,
    private readonly opts: DeployOptions,
  ) {
    const { log, signal, env } = opts.context;
    this.transfer = { ...opts.transfer, signal, log, env };
    this.env = { ...env };
  }

  private get log() {
    return this.opts.context.log;
  }

  get commandsOnly(): boolean {
    const m = this.manifest;
    return !m || m.archives.length === 0 || !m.dest;
  }

  private target(): Manifest & { dest: string; identity: string } {
    const m = this.manifest as Manifest;
    return { ...m, dest: m.dest as string, identity: m.identity as string };
  }

  /** The manifest: fetched (or what watch fetched), signature checked, validated. */
  async load(prefetched: Fetched | undefined): Promise<void> {
    this.log.info(`loading manifest ${this.location}`);
    const loaded = await loadManifest(this.location, this.transfer, this.opts.verifyKeys, prefetched);
    const { manifest } = loaded;
    const previous = manifest.dest ? await this.opts.previousDeploy(manifest.dest) : undefined;
    // Before anything in a signed manifest is believed, its failure commands included.
    if (this.opts.verifyKeys.length) {
      if (!this.opts.serialsRecorded)
        throw new ReplayError(`cannot check signed manifest ${this.location} against replays: the state directory cannot record serials; fix --state-dir (or STRETCHER_STATE_DIR)`);
      checkBinding(manifest, this.location, previous?.highestSerial);
    }
    if (this.opts.verifyKeys.length) checkGitPinned(manifest);
    this.manifest = manifest;
    this.previous = previous;
    for (const w of loaded.warnings) this.log.warn(w);
    this.failureCommands = manifest.commands.failure;
    this.env = hookEnv(this.opts.context.env, manifest, previous);
  }

  /** Held until the success/failure commands are done: two deploys to one dest never interleave. */
  async lock(): Promise<void> {
    const dest = this.manifest?.dest;
    if (dest) this.destLock = await lockDest(dest, { dir: await this.opts.lock.dir(), timeoutMs: this.opts.lock.timeoutMs, log: this.log, signal: this.opts.context.signal });
    if (this.commandsOnly) this.log.info('no src in the manifest: running commands only');
  }

  /**
   * Git sources: each ref fetched into its repository's cache and resolved to a commit, which must be the
   * checksum when one is given; an unpinned source is then named by the commit it resolved to (hooks'
   * STRETCHER_CHECKSUM, the release id, the state record).
   */
  async resolve(): Promise<boolean> {
    const manifest = this.manifest as Manifest;
    if (!manifest.archives.some((a) => a.kind === 'git')) return true;
    let root = await this.opts.gitCacheDir();
    if (root === undefined) {
      await checkTrustedDir(tmpdir(), `TMPDIR ${tmpdir()}`, { sticky: true });
      this.gitTemp = await mkdtemp(path.join(tmpdir(), workDirPrefix()));
      root = this.gitTemp;
    }
    const lockDir = await this.opts.lock.dir();
    const archives: Archive[] = [];
    for (const archive of manifest.archives) {
      if (archive.kind !== 'git') {
        archives.push(archive);
        continue;
      }
      this.log.info(`fetching ${archive.src.refShown} of git repository ${archive.src.remoteShown}`);
      const started = performance.now();
      const got = await fetchCommit(archive.src, archive.checksum?.hex, { ...this.transfer, root, lockDir, lockTimeoutMs: this.opts.lock.timeoutMs });
      this.fetched.push(got);
      this.log.info(`${archive.src}: commit ${got.commit} in ${formatDuration(performance.now() - started)}`);
      this.gitTrees.push({ source: archive.src, gitDir: got.gitDir, commit: got.commit });
      if (!archive.checksum) this.unpinned.push({ source: archive.src, commit: got.commit });
      archives.push({ ...archive, checksum: { algorithm: got.commit.length === 40 ? 'sha1' : 'sha256', hex: got.commit } });
    }
    const identity = identityOf(archives);
    this.manifest = { ...manifest, archives, ...(identity ? { identity } : {}), ...(manifest.src && archives.length === 1 ? { checksum: archives[0]?.checksum } : {}) } as Manifest;
    this.env = hookEnv(this.opts.context.env, this.manifest, this.previous);
    return true;
  }

  /** The strategy's decisions before anything is downloaded; false when there is nothing to do. */
  async prepare(): Promise<boolean> {
    const strategy = strategyFor(this.target(), this.opts.strategies, this.log);
    this.strategy = strategy;
    const prepared = (await strategy.prepare?.()) ?? {};
    this.release = prepared.release;
    if (prepared.alreadyCurrent) {
      this.log.info(prepared.alreadyCurrent);
      this.current = true;
      return false;
    }
    Object.assign(this.env, prepared.env);
    return true;
  }

  /** Download, verify and unpack into a private staging tree; nothing at dest changes yet. */
  async stage(): Promise<void> {
    const { dest, archives, excludeFrom } = this.target();
    // The work directory (a zip's spool, verified layers) is made there, private and under a random name.
    await checkTrustedDir(tmpdir(), `TMPDIR ${tmpdir()}`, { sticky: true });
    await removeDeadDebris(tmpdir(), WORK_DEBRIS, this.log);
    await recoverDebris(dest, this.log);
    this.workDir = await mkdtemp(path.join(tmpdir(), workDirPrefix()));
    // Files dest already has are compared, not written, where the sync keeps them: not with git sources (their
    // caches are released once unpacked, and unpacking again must stay possible), nor with exclude_from (the
    // sync reads that file from staging), nor into an absent or empty dest (nothing to compare with).
    const reuse = this.strategy?.reusesDest && excludeFrom === undefined && !archives.some((a) => a.kind === 'git') && (await readdir(dest).catch(() => [])).length > 0;
    try {
      await this.unpack(reuse ? dest : undefined);
    } catch (err) {
      if (!(reuse && err instanceof StaleKeptError)) throw err;
      // A hard link's target, found equal in dest and so never staged, changed before it could be staged.
      await this.unpackAgain(err);
    }
  }

  private async unpack(reuseDest: string | undefined): Promise<void> {
    const { dest, archives } = this.target();
    this.staging = await (this.strategy as SyncStrategy).createStaging(dest, this.workDir as string);
    // node-tar and the writer threads are loaded only by deploys that unpack something.
    const { unpackArchives } = await import('./unpack/archives.js');
    try {
      this.compared = await unpackArchives(
        archives,
        this.gitTrees,
        this.staging,
        this.workDir as string,
        this.transfer,
        this.opts.limits,
        this.log,
        reuseDest,
        this.strategy?.separateHardLinks ? 'copy' : 'link',
      );
      const kept = this.compared?.kept.size;
      if (kept) this.log.info(`unpacking: ${kept} ${kept === 1 ? 'file was' : 'files were'} already in dest byte for byte: compared, not written`, { kept });
    } catch (err) {
      // git could not read a commit the cache said was whole (a damaged object): the cache goes, still
      // under its lock, and the next deploy fetches afresh. Nothing of it reached dest.
      if (err instanceof GitError && this.gitTrees.length) {
        for (const tree of this.gitTrees) await removeTree(tree.gitDir).catch(() => {});
        throw new StretcherError('UNPACK_FAILED', `${err.message}; the git cache is damaged, so it was removed and the next deploy fetches afresh`);
      }
      throw err;
    }
    await this.releaseGit();
  }

  /** Unpacked: the caches are free for the next deploy. */
  private async releaseGit(): Promise<void> {
    const held = this.fetched;
    this.fetched = [];
    for (const f of held) await f.release();
  }

  /** pre runs once the archive is verified and unpacked, and before anything changes at dest. */
  async pre(): Promise<void> {
    await runCommands(this.manifest?.commands.pre ?? [], 'pre', this.hookContext());
  }

  async sync(): Promise<void> {
    try {
      await this.syncStaged();
    } catch (err) {
      if (!(err instanceof StaleKeptError)) throw err;
      // A file unpacking found equal, and so never staged, changed since; nothing at dest has changed yet.
      await this.unpackAgain(err);
      await this.syncStaged();
    }
  }

  private async unpackAgain(err: StaleKeptError): Promise<void> {
    this.log.warn(`${err.message}: unpacking the archive again, in full`);
    if (this.staging !== undefined) await removeStaging(this.staging);
    this.staging = undefined;
    this.compared = undefined;
    await this.unpack(undefined);
  }

  private async syncStaged(): Promise<void> {
    const manifest = this.target();
    const staging = this.staging as string;
    // The last moment to stop with dest untouched: a signal during the steps above ends the deploy here.
    this.opts.context.signal.throwIfAborted();
    this.synced = await (this.strategy as SyncStrategy).sync({
      ...this.commandContext(),
      staging,
      destMode: manifest.destMode,
      dest: manifest.dest,
      excludes: manifest.excludes,
      ...(manifest.excludeFrom !== undefined ? { excludeFrom: manifest.excludeFrom } : {}),
      ...(this.compared ? { compared: this.compared } : {}),
    });
  }

  /** post; when it fails after a sync, the strategy says what becomes of dest (release: switched back). */
  async post(): Promise<void> {
    try {
      await runCommands(this.manifest?.commands.post ?? [], 'post', this.hookContext());
      const health = this.manifest?.health;
      if (health) await awaitHealthy(health, this.commandContext());
      await this.synced?.afterPostSuccess?.();
    } catch (err) {
      const fresh = this.release;
      const answer = await this.synced?.afterPostFailure?.(this.log, err instanceof HealthError ? 'health check' : 'post');
      if (answer) {
        this.rolledBack = answer.rolledBack;
        this.release = answer.release;
      }
      // The new release's post ran, and its service is sick: the restored release's post starts it again.
      if (err instanceof HealthError && answer?.rolledBack && answer.release) await this.restartRestored(answer.release, fresh);
      throw err;
    }
  }

  /** After a failed health gate switched dest back: the restored release's recorded post, as a rollback runs it. */
  private async restartRestored(id: string, from: string | undefined): Promise<void> {
    const { dest, releasesDir } = this.target();
    try {
      const store = ReleaseStore.forDest(dest, releasesDir);
      const target = await store.info(id);
      this.log.info(`running the post commands of restored release ${id}`);
      if (!(await runRestoredPost(target, { ...this.opts.context, env: restoredEnv(store, target, from, this.opts.context.env) }, this.opts.commandTimeoutMs))) {
        this.log.warn(`release ${id} has no recorded commands (deployed by an older stretcher): switched back only`);
      }
    } catch (err) {
      this.log.error(`the post commands of restored release ${id} failed too: ${errorMessage(err)}`);
    }
  }

  /**
   * What the strategy left to remove while post ran (mv's previous dest) is gone. A signal meanwhile fails
   * the deploy, as it did when the removal was part of the sync.
   */
  async settle(): Promise<void> {
    await this.synced?.leftovers;
    this.opts.context.signal.throwIfAborted();
  }

  failed(err: unknown): void {
    this.error = err;
    if (err instanceof ManifestError && err.failureCommands) this.failureCommands = err.failureCommands;
  }

  /** Temp files go on every path, before success/failure commands run (as in Go stretcher). */
  async cleanUp(): Promise<void> {
    // After a failure in post, settle() did not run.
    await this.synced?.leftovers;
    await this.releaseGit().catch(() => {});
    if (this.gitTemp) await removeTree(this.gitTemp).catch(() => {});
    if (this.staging) await removeStaging(this.staging).catch(() => {});
    if (this.workDir) await rm(this.workDir, { recursive: true, force: true }).catch(() => {});
    if (this.error !== undefined && !this.synced) await this.strategy?.abandon?.().catch(() => {});
  }

  /** The outcome, said in the log and to the success or failure commands. */
  async report(): Promise<DeployOutcome> {
    const durationMs = performance.now() - this.started;
    const manifest = this.manifest ? { manifest: this.manifest } : {};
    const release = { ...(this.release ? { release: this.release } : {}), ...(this.unpinned.length ? { unpinned: this.unpinned } : {}) };
    if (this.current) return { ok: true, ...manifest, ...release, durationMs };
    if (this.error === undefined) {
      this.log.info(`deploy succeeded in ${formatDuration(durationMs)}`, { duration_ms: Math.round(durationMs) });
      try {
        await runCommands(this.manifest?.commands.success ?? [], 'success', { ...this.hookContext(), input: this.log.text() });
      } catch (err) {
        // The deploy itself succeeded; a broken notification must not turn it into a failure.
        this.log.warn(`${errorMessage(err)}; the deploy itself succeeded`);
      }
      return { ok: true, ...manifest, ...release, durationMs };
    }
    const message = errorMessage(this.error);
    this.log.error(`deploy failed: ${message}`);
    // System errors (ENOSPC, EACCES on TMPDIR...) are the machine's, and their message says what; anything
    // else that is not ours is a bug, reported with its stack folded onto one line.
    const systemError = typeof (this.error as NodeJS.ErrnoException | undefined)?.code === 'string';
    if (!(this.error instanceof StretcherError) && !systemError) {
      this.log.error(`this is a bug in stretcher; please report it with this log: ${errorMessage((this.error as Error)?.stack ?? String(this.error))}`);
    }
    if (this.failureCommands.length) {
      // A token a template spliced into a failed command line must not reach the failure commands either.
      const env = { ...this.env, STRETCHER_ERROR: this.log.redactor.text(message), ...(this.rolledBack ? { STRETCHER_ROLLED_BACK: '1' } : {}) };
      try {
        await runCommands(this.failureCommands, 'failure', { ...this.hookContext(env), signal: this.opts.cleanupSignal, input: this.log.text() });
      } catch (err) {
        this.log.warn(errorMessage(err));
      }
    }
    // The release dest points at, when this deploy got as far as switching it (and maybe back).
    return { ok: false, error: this.error, ...manifest, ...(this.synced && this.release ? { release: this.release } : {}), durationMs };
  }

  async unlock(): Promise<void> {
    await this.destLock?.release();
  }

  private commandContext(env: NodeJS.ProcessEnv = this.env): RunContext {
    return { ...this.opts.context, env };
  }

  /** Hook commands are bounded by command_timeout (or --command-timeout); rsync and downloads are not. */
  private hookContext(env: NodeJS.ProcessEnv = this.env): RunContext & { timeoutMs: number } {
    return { ...this.commandContext(env), timeoutMs: this.manifest?.commandTimeoutMs ?? this.opts.commandTimeoutMs };
  }
}

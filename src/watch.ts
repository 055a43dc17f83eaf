import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeployOutcome } from './deploy.js';
import { fetchBytes, type Fetched, type TransferOptions } from './transfer/download.js';
import { formatDuration } from './shared/duration.js';
import { errorMessage, InterruptedError } from './shared/errors.js';
import type { Log } from './shared/log.js';
import { MAX_MANIFEST_BYTES } from './manifest/load.js';
import type { Location } from './shared/location.js';
import type { StateStore, WatchRecord } from './host/state.js';
import { remoteCommit } from './transfer/git/fetch.js';
import type { GitSource } from './transfer/git/source.js';

export interface WatchOptions {
  url: Location;
  intervalMs: number;
  jitterMs: number;
  log: Log;
  /** SIGTERM/SIGINT: stop polling; a deploy under way is aborted (its failure commands run). */
  signal: AbortSignal;
  state: StateStore;
  transfer: TransferOptions;
  deploy: (manifest: Fetched) => Promise<DeployOutcome>;
  /** The unpinned git sources of a manifest (after a restart, to follow what the last deploy followed). */
  gitSources?: (manifest: Fetched) => Promise<GitSource[]>;
}

/** The manifest last seen, and the unpinned git sources whose refs are followed while it stays the same. */
interface Followed {
  sha: string;
  fetched: Fetched;
  sources: GitSource[];
}

/** After n failed deploys in a row, wait this many intervals before the next try: 2, 4, 8, then 10. */
export function backoffIntervals(failures: number): number {
  return Math.min(2 ** failures, 10);
}

/**
 * `stretcher watch URL`: repo-deploy's and dropship's job in stretcher's model. Polls the manifest with
 * conditional requests, deploys when its content changes, remembers what it deployed across restarts, backs
 * off after failures, and says nothing while nothing happens.
 */
export async function watch(opts: WatchOptions): Promise<void> {
  const { log, signal, state } = opts;
  const url = opts.url;
  const shown = url.shown;
  const record: WatchRecord = (await state.watchRecord(url.href)) ?? { url: shown, failures: 0 };
  let pollErrors = 0;
  log.info(`watching ${shown} every ${formatDuration(opts.intervalMs)}${opts.jitterMs ? ` (+ up to ${formatDuration(opts.jitterMs)})` : ''}`);
  let followed: Followed | undefined;
  while (!signal.aborted) {
    let intervals = 1;
    try {
      // A failed deploy is retried with the body even if the source says it has not changed; after a
      // restart, a manifest whose git refs are followed is read once to learn which sources they are.
      const mustRead = record.failed_sha256 !== undefined || (record.git_commits?.length && followed === undefined);
      const conditional = mustRead ? undefined : record.validators;
      const fetched = await fetchBytes(url, MAX_MANIFEST_BYTES, 'manifest', { ...opts.transfer, signal }, conditional);
      if (pollErrors) log.info(`polling ${shown} works again after ${pollErrors} failed attempt${pollErrors > 1 ? 's' : ''}`);
      pollErrors = 0;
      if (fetched.validators) record.validators = fetched.validators;
      const sha = fetched.notModified ? followed?.sha : createHash('sha256').update(fetched.bytes).digest('hex');
      const manifest = fetched.notModified ? followed?.fetched : fetched;
      if (sha !== undefined && manifest && followed?.sha !== sha) {
        const sources = sha === record.deployed_sha256 && record.git_commits?.length ? ((await opts.gitSources?.(manifest)) ?? []) : [];
        followed = { sha, fetched: manifest, sources };
      }
      // An unpinned git source's ref is asked for at every poll: a push redeploys an unchanged manifest.
      const heads =
        sha !== undefined && sha === record.deployed_sha256 && followed?.sources.length
          ? await Promise.all(followed.sources.map((source) => remoteCommit(source, { ...opts.transfer, signal })))
          : undefined;
      const moved = heads !== undefined && heads.join(',') !== (record.git_commits ?? []).join(',');
      const key = sha === undefined ? undefined : moved ? `${sha}:${heads?.join(',')}` : sha;
      if (sha !== undefined && manifest && key !== undefined && (sha !== record.deployed_sha256 || moved)) {
        const retry = key === record.failed_sha256;
        log.info(
          retry
            ? `retrying the deploy of ${shown} (failed ${record.failures} time${record.failures > 1 ? 's' : ''})`
            : moved
              ? `git ${followed?.sources.length === 1 ? `source ${followed.sources[0]} moved to ${heads?.[0]}` : `sources moved to ${heads?.join(', ')}`}: deploying`
              : `manifest ${shown} changed: deploying`,
        );
        const outcome = await opts.deploy(manifest);
        if (outcome.error instanceof InterruptedError) break;
        if (outcome.ok) {
          if (record.failures) log.info(`recovered: ${shown} deployed after ${record.failures} failed attempt${record.failures > 1 ? 's' : ''}`);
          record.deployed_sha256 = sha;
          record.deployed_at = new Date().toISOString();
          record.failures = 0;
          delete record.failed_sha256;
          const unpinned = outcome.unpinned ?? [];
          if (unpinned.length) record.git_commits = unpinned.map((u) => u.commit);
          else delete record.git_commits;
          followed = { sha, fetched: manifest, sources: unpinned.map((u) => u.source) };
        } else {
          record.failures = key === record.failed_sha256 ? record.failures + 1 : 1;
          record.failed_sha256 = key;
          intervals = backoffIntervals(record.failures);
          log.warn(`deploy of ${shown} failed; trying again in ${formatDuration(intervals * opts.intervalMs)}`);
        }
      }
      await state.saveWatchRecord(url.href, record);
    } catch (err) {
      if (signal.aborted) break;
      pollErrors++;
      intervals = backoffIntervals(pollErrors);
      // One line when polling starts failing, not one per poll.
      if (pollErrors === 1) log.warn(`cannot poll ${shown}: ${errorMessage(err)}; retrying with backoff`);
    }
    try {
      await sleep(intervals * opts.intervalMs + Math.random() * opts.jitterMs, undefined, { signal });
    } catch {
      break;
    }
  }
  log.info(`stopped watching ${shown}`);
}

import { rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../../shared/errors.js';
import type { Log } from '../../shared/log.js';
import type { Manifest } from '../../manifest/types.js';
import { releaseStagingPrefix, STAGING_DEBRIS } from '../../host/paths.js';
import { removeDeadDebris } from '../debris.js';
import { checkDestination } from '../destination.js';
import { pruneExcluded } from '../excludes.js';
import type { PostFailure, SyncStrategy } from '../types.js';
import { publish } from '../publish.js';
import { stagingIn } from '../staging.js';
import { ReleaseStore } from './store.js';

export interface ReleaseOptions {
  /** Redeploy (and re-run hooks) even when the checksum is already current (--force). */
  force: boolean;
}

/**
 * Each deploy unpacks into its own `<releases_dir>/<id>` and dest, a symlink, is switched to it atomically
 * (ftl's and Capistrano's model). Nothing under a running application changes in place; rolling back is one
 * more switch.
 */
export function releaseStrategy(manifest: Manifest & { dest: string; identity: string }, opts: ReleaseOptions, log: Log): SyncStrategy {
  const store = ReleaseStore.forDest(manifest.dest, manifest.releasesDir);
  let id: string | undefined;
  let previous: string | undefined;
  /** Whether this deploy made releases_dir (a first deploy): if it fails before the sync, it goes again. */
  let madeDir = false;

  /** Switches dest back to the release current before this deploy (or removes the first one's symlink). */
  const switchBack = async (): Promise<string> => {
    if (previous) {
      await store.switchTo(previous);
      return `release ${previous}`;
    }
    // The first release: "as before" is no dest at all.
    await rm(manifest.dest, { force: true });
    return 'no release (removed the dest symlink made by this first deploy)';
  };

  return {
    name: 'release',
    async prepare() {
      await checkDestination(manifest.dest, 'symlink', 'release');
      await store.checkDest();
      await store.checkTrusted();
      previous = await store.current();
      const live = previous ? await store.info(previous) : undefined;
      // A release whose post failed (kept with rollback_on_failure: false) is not "current": it is redeployed.
      if (previous && live && !opts.force && live.status !== 'failed' && manifest.identity.startsWith(live.checksum)) {
        return {
          alreadyCurrent: `release ${previous} (checksum ${manifest.identity.slice(0, 12)}) is already current at ${manifest.dest}; nothing to do (--force redeploys)`,
          release: previous,
        };
      }
      madeDir = await store.ensureDir();
      await removeDeadDebris(store.dir, STAGING_DEBRIS, log);
      id = await store.freeId(manifest.identity);
      return {
        release: id,
        env: {
          STRETCHER_RELEASE_DIR: path.join(store.dir, id),
          STRETCHER_PREVIOUS_RELEASE_DIR: previous ? path.join(store.dir, previous) : '',
        },
      };
    },
    // Only when empty: another deploy may have put a release in it meanwhile.
    async abandon() {
      if (madeDir) await rmdir(store.dir).catch(() => {});
    },
    // Hidden and named after this process: never listed as a release, never pruned by another deploy.
    createStaging: () => stagingIn(path.join(store.dir, releaseStagingPrefix(id as string))),
    async sync(ctx) {
      const releaseId = id as string;
      await pruneExcluded(ctx.staging, ctx.excludes, ctx.excludeFrom, log, 'release');
      await publish(ctx.staging, path.join(store.dir, releaseId), ctx.destMode);
      const { post, success, failure } = manifest.commands;
      const hooks = { post, success, failure, ...(manifest.commandTimeoutMs !== undefined ? { commandTimeoutMs: manifest.commandTimeoutMs } : {}) };
      await store.writeMeta(releaseId, { checksum: manifest.identity, manifestUrl: manifest.url.shown, hooks });
      await store.switchTo(releaseId);
      await store.recordSwitch(previous, releaseId, 'deploy');
      log.info(`switched ${manifest.dest} to release ${releaseId}${previous ? ` (was ${previous})` : ''}`);
      return {
        // Only now is the new release known good: retention never removes a good release for a failed one.
        async afterPostSuccess(): Promise<void> {
          try {
            await store.setStatus(releaseId, 'ok');
            const keep = new Set([releaseId, previous, await store.previous(releaseId)].filter((x): x is string => x !== undefined));
            const removed = await store.prune(manifest.keepReleases, keep);
            if (removed.length) log.info(`removed ${removed.length} old release${removed.length > 1 ? 's' : ''} (keep_releases ${manifest.keepReleases}): ${removed.join(', ')}`);
          } catch (err) {
            log.warn(`cannot remove old releases: ${errorMessage(err)}`);
          }
        },
        // A failed post: dest goes back to what it was before the failure commands run.
        async afterPostFailure(_log, failed): Promise<PostFailure> {
          await store.setStatus(releaseId, 'failed').catch((err: unknown) => log.warn(`cannot mark release ${releaseId} failed: ${errorMessage(err)}`));
          if (!manifest.rollbackOnFailure) return { rolledBack: false, release: releaseId };
          try {
            log.warn(`${failed} failed: rolled back to ${await switchBack()}`);
            await store.forgetSwitch(releaseId);
            return { rolledBack: true, ...(previous ? { release: previous } : {}) };
          } catch (err) {
            log.error(`rollback failed: ${errorMessage(err)}`);
            return { rolledBack: false, release: releaseId };
          }
        },
      };
    },
  };
}

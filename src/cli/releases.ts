import path from 'node:path';
import { errorMessage } from '../shared/errors.js';
import { lockDest } from '../host/lock.js';
import type { Log } from '../shared/log.js';
import type { Options } from './flags.js';
import { ReleaseStore } from '../sync/release/store.js';
import type { StateStore } from '../host/state.js';

/** `stretcher releases --dest PATH [--json]`: every release, the current and previous marked. */
export async function releasesCommand(dest: string, opts: Pick<Options, 'json' | 'releasesDir'>): Promise<number> {
  const store = ReleaseStore.forDest(path.resolve(dest), opts.releasesDir);
  const releases = await store.list();
  const current = await store.current();
  const previous = await store.previous(current);
  const rows = releases.map((r) => ({ ...r, current: r.id === current, previous: r.id === previous }));
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ dest: store.dest, releases_dir: store.dir, current: current ?? null, previous: previous ?? null, releases: rows }, null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    process.stdout.write(`no releases in ${store.dir}\n`);
    return 0;
  }
  for (const r of rows.reverse()) {
    const mark = r.current ? 'current ' : r.previous ? 'previous' : '        ';
    process.stdout.write(`${mark} ${r.id}  ${r.checksum.slice(0, 12)}  ${r.time}${r.manifestUrl ? `  ${r.manifestUrl}` : ''}\n`);
  }
  return 0;
}

export interface RollbackDeps {
  log: Log;
  state: StateStore;
  lockDir: string;
  signal: AbortSignal;
}

/**
 * `stretcher rollback --dest PATH [--to ID]`: one atomic switch, under the same lock as deploys so it never
 * races one, recorded in the state directory.
 */
export async function rollbackCommand(dest: string, opts: Pick<Options, 'to' | 'releasesDir' | 'lockTimeoutMs'>, deps: RollbackDeps): Promise<number> {
  const { log } = deps;
  const store = ReleaseStore.forDest(path.resolve(dest), opts.releasesDir);
  const started = performance.now();
  let lock;
  try {
    lock = await lockDest(store.dest, { dir: deps.lockDir, timeoutMs: opts.lockTimeoutMs, log, signal: deps.signal });
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
    await deps.state.recordDeploy({
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

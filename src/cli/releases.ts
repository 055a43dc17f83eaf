import { normalDest } from '../shared/dest.js';
import { errorMessage } from '../shared/errors.js';
import { type ReleaseInfo, ReleaseStore } from '../sync/release/store.js';
import type { Invocation } from './flags.js';

/** `stretcher releases --dest PATH [--json]`: every release, the current and previous (the one live before it) marked. */
export async function releasesCommand({ values: opts }: Invocation): Promise<number> {
  const store = ReleaseStore.forDest(normalDest(opts.dest as string), opts.releasesDir);
  let releases: ReleaseInfo[];
  let current: string | undefined;
  let previous: string | undefined;
  try {
    releases = await store.list();
    current = await store.current();
    previous = await store.previous(current);
  } catch (err) {
    // A sidecar another user could have written is refused (store.ts): one line, not a stack.
    process.stderr.write(`stretcher: ${errorMessage(err)}\n`);
    return 1;
  }
  // The recorded commands stay in the sidecars (root's alone): they may hold what a template filled in.
  const rows = releases.map(({ hooks: _hooks, ...r }) => ({ ...r, current: r.id === current, previous: r.id === previous }));
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
    const failed = r.status === 'failed' ? '  (post failed)' : '';
    process.stdout.write(`${mark} ${r.id}  ${r.checksum.slice(0, 12)}  ${r.time}${r.manifestUrl ? `  ${r.manifestUrl}` : ''}${failed}\n`);
  }
  return 0;
}

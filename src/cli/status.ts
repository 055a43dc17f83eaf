import { formatDuration } from '../shared/duration.js';
import { StateStore } from '../host/state.js';
import { Log } from '../shared/log.js';
import type { Invocation } from './flags.js';

/** `stretcher status [--json] [--dest PATH]`: the last deploy of each dest, from the state directory. */
export async function statusCommand({ values: opts }: Invocation, _env: NodeJS.ProcessEnv): Promise<number> {
  const state = new StateStore(opts.stateDir, new Log());
  const records = (await state.allDeploys()).filter((r) => opts.dest === undefined || r.dest === opts.dest.replace(/\/+$/, ''));
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(opts.dest !== undefined ? (records[0] ?? null) : records, null, 2)}\n`);
    return opts.dest !== undefined && records.length === 0 ? 1 : 0;
  }
  if (records.length === 0) {
    process.stdout.write(opts.dest !== undefined ? `no deploy of ${opts.dest} recorded in ${state.dir}\n` : `no deploys recorded in ${state.dir}\n`);
    return opts.dest !== undefined ? 1 : 0;
  }
  for (const r of records) {
    const checksum = r.checksum ? ` ${r.checksum.slice(0, 12)}` : '';
    const event = r.event_id ? ` event ${r.event_id}` : '';
    process.stdout.write(`${r.dest}: ${r.result} at ${r.time} in ${formatDuration(r.duration_ms)}${checksum}${event} from ${r.manifest_url}\n`);
    if (r.error) process.stdout.write(`  error: ${r.error}\n`);
  }
  return 0;
}

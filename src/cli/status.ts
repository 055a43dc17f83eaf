import { formatDuration } from '../shared/duration.js';
import { normalDest } from '../shared/dest.js';
import { StateStore } from '../host/state.js';
import { Log } from '../shared/log.js';
import { Redactor } from '../shared/redact.js';
import { usageError } from './exit.js';
import type { Invocation } from './flags.js';

/**
 * `stretcher status [--json] [--dest PATH]`: the last deploy of each dest, from the state directory;
 * `status --dest PATH --log`: that deploy's whole log.
 */
export async function statusCommand({ values: opts }: Invocation, env: NodeJS.ProcessEnv): Promise<number> {
  const state = new StateStore(opts.stateDir, new Log());
  // Records are scrubbed when written; older ones, and this environment's secrets, are scrubbed here too.
  const redactor = Redactor.fromEnv(env);
  const write = (text: string): boolean => process.stdout.write(redactor.text(text));
  const dest = opts.dest === undefined ? undefined : normalDest(opts.dest);
  if (opts.log) {
    if (dest === undefined) return usageError('status --log needs --dest PATH: the log kept is per dest', 'status');
    const text = await state.lastLog(dest);
    if (text === undefined) {
      process.stderr.write(`stretcher: no log of a deploy to ${dest} kept in ${state.dir}\n`);
      return 1;
    }
    write(text);
    return 0;
  }
  const records = (await state.allDeploys()).filter((r) => dest === undefined || r.dest === dest);
  if (opts.json) {
    write(`${JSON.stringify(opts.dest !== undefined ? (records[0] ?? null) : records, null, 2)}\n`);
    return opts.dest !== undefined && records.length === 0 ? 1 : 0;
  }
  if (records.length === 0) {
    write(opts.dest !== undefined ? `no deploy of ${opts.dest} recorded in ${state.dir}\n` : `no deploys recorded in ${state.dir}\n`);
    return opts.dest !== undefined ? 1 : 0;
  }
  for (const r of records) {
    const checksum = r.checksum ? ` ${r.checksum.slice(0, 12)}` : '';
    const event = r.event_id ? ` event ${r.event_id}` : '';
    write(`${r.dest}: ${r.result} at ${r.time} in ${formatDuration(r.duration_ms)}${checksum}${event} from ${r.manifest_url}\n`);
    if (r.error) write(`  error: ${r.error}\n`);
  }
  return 0;
}

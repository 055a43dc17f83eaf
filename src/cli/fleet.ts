import { parseAnswer, type DestStatus, type StatusAnswer } from '../fleet/answer.js';
import { type Member, membersOf, query } from '../fleet/serf.js';
import { errorMessage } from '../shared/errors.js';
import type { Invocation } from './flags.js';
import { STATUS_QUERY } from './query.js';

/** --timeout's default for fleet: how long members have to answer. */
export const FLEET_TIMEOUT_MS = 5000;

/** One member in `fleet --json`. */
interface MemberView {
  name: string;
  status: string;
  answered: boolean;
  deploys?: DestStatus[];
  truncated?: number;
}

/**
 * `stretcher fleet`: every member's stretcher-status answer (its last deploy of each dest), as a table or
 * JSON. A member that does not answer (dead, or without stretcher as its query handler) is shown as such,
 * and makes the exit status 1.
 */
export async function fleetCommand({ values }: Invocation): Promise<number> {
  const timeoutMs = values.timeoutMs || FLEET_TIMEOUT_MS;
  let members: Member[];
  try {
    members = (await membersOf({ rpcAddr: values.rpcAddr, tags: values.tags })).filter((m) => m.status !== 'left');
  } catch (err) {
    process.stderr.write(`stretcher: ${errorMessage(err)}\n`);
    return 1;
  }
  const alive = members.filter((m) => m.status === 'alive').map((m) => m.name);
  let answers = new Map<string, string>();
  if (alive.length) {
    try {
      answers = (await query(STATUS_QUERY, '', { rpcAddr: values.rpcAddr, nodes: alive, timeoutMs })).answers;
    } catch (err) {
      process.stderr.write(`stretcher: ${errorMessage(err)}\n`);
      return 1;
    }
  }
  const views = members.map((m): MemberView => {
    const payload = answers.get(m.name);
    const answer = payload === undefined ? undefined : parseAnswer<StatusAnswer>(payload);
    if (!answer || !Array.isArray(answer.deploys)) return { name: m.name, status: m.status, answered: false };
    return { name: m.name, status: m.status, answered: true, deploys: answer.deploys, ...(answer.truncated ? { truncated: answer.truncated } : {}) };
  });
  if (values.json) process.stdout.write(`${JSON.stringify({ nodes: views })}\n`);
  else process.stdout.write(table(views));
  return views.every((v) => v.answered) ? 0 : 1;
}

function table(views: readonly MemberView[]): string {
  const rows: string[][] = [['NODE', 'DEST', 'RESULT', 'CHECKSUM', 'RELEASE', 'TIME']];
  for (const v of views) {
    if (!v.answered) rows.push([v.name, v.status === 'alive' ? '(no answer)' : `(${v.status}: no answer)`]);
    else if (!v.deploys?.length && !v.truncated) rows.push([v.name, '(no deploys recorded)']);
    for (const d of v.deploys ?? []) rows.push([v.name, d.dest, d.result, d.checksum?.slice(0, 12) ?? '-', d.release ?? '-', d.time]);
    if (v.truncated) rows.push([v.name, `(${v.truncated} more dest${v.truncated > 1 ? 's' : ''}: the answer is limited to Serf's 1024 bytes)`]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.filter((r) => r.length > 2).map((r) => (r[i] ?? '').length))) ?? [];
  return rows
    .map((r) => (r.length > 2 ? r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i] ?? 0) : c)).join('  ') : `${(r[0] ?? '').padEnd(widths[0] ?? 0)}  ${r[1] ?? ''}`))
    .join('\n')
    .concat('\n');
}

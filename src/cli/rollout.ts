import { setTimeout as sleep } from 'node:timers/promises';
import { type HostResult, hostResult, rollout } from '../fleet/rollout.js';
import { aliveMembers, memberStatus, query, type SerfTarget } from '../fleet/serf.js';
import { formatDuration } from '../shared/duration.js';
import { errorMessage } from '../shared/errors.js';
import { redactUrl } from '../shared/redact.js';
import { deployExitStatus, usageError } from './exit.js';
import type { Invocation } from './flags.js';
import { DEPLOY_QUERY } from './query.js';
import { installSignals } from './signals.js';

/** --timeout's default for a rollout: how long one host's deploy may take before it counts as failed. */
export const ROLLOUT_TIMEOUT_MS = 10 * 60_000;
/** How often a host being deployed is checked for still being a member, so a dead one fails at once. */
const LIVENESS_POLL_MS = 2000;

/**
 * `stretcher rollout URL`: asks the cluster's members, in node-name order, to deploy URL through
 * stretcher-deploy queries: canaries one at a time, then batches in parallel, stopping before the next
 * batch once more than --max-failures hosts failed. Exit 0 only when every host succeeded.
 */
export async function rolloutCommand({ values, operands }: Invocation): Promise<number> {
  const url = operands[0] as string;
  if (values.batch < 1) return usageError('--batch must be at least 1', 'rollout');
  const target: SerfTarget = { rpcAddr: values.rpcAddr, tags: values.tags };
  const timeoutMs = values.timeoutMs || ROLLOUT_TIMEOUT_MS;
  // With --json, stdout holds the one object; the progress lines go to stderr.
  const say = (text: string): boolean => (values.json ? process.stderr : process.stdout).write(`${text}\n`);
  let names: string[];
  try {
    names = (await aliveMembers(target)).map((m) => m.name);
  } catch (err) {
    process.stderr.write(`stretcher: ${errorMessage(err)}\n`);
    return 1;
  }
  if (names.length === 0) {
    process.stderr.write(`stretcher: no alive members${values.tags.length ? ` match ${values.tags.map((t) => `--tag ${t}`).join(' ')}` : ''} at ${target.rpcAddr}\n`);
    return 1;
  }
  say(
    `rollout of ${redactUrl(url)} to ${names.length} host${names.length > 1 ? 's' : ''}: ${values.canary} canary, then batches of ${values.batch}; stop after ${values.maxFailures + 1} failure${values.maxFailures ? 's' : ''}`,
  );
  // A signal stops the queries under way (their serf processes) and starts no more; then the report.
  const { signal } = installSignals();
  const report = await rollout(
    names,
    { canary: values.canary, batch: values.batch, maxFailures: values.maxFailures },
    (name) => deployOn(name, url, values.rpcAddr, timeoutMs, signal),
    (r) => say(hostLine(r)),
    signal,
  );
  const count = (result: HostResult['result']): number => report.nodes.filter((n) => n.result === result).length;
  const skipped = count('skipped');
  say(
    `rollout ${count('failure') ? 'failed' : 'succeeded'}: ${count('success')} succeeded, ${count('failure')} failed${skipped ? `, ${skipped} not asked (stopped: more than ${values.maxFailures} failed)` : ''}`,
  );
  if (values.json) process.stdout.write(`${JSON.stringify(report)}\n`);
  if (signal.aborted) return deployExitStatus(signal.reason, {});
  return report.nodes.every((n) => n.result === 'success') ? 0 : 1;
}

function hostLine(r: HostResult): string {
  if (r.result === 'success') return `${r.name}: success${r.release ? ` release ${r.release}` : ''}${r.checksum ? ` checksum ${r.checksum.slice(0, 12)}` : ''}`;
  return `${r.name}: ${r.result}${r.release ? ` (dest on release ${r.release})` : ''}: ${r.error ?? ''}`;
}

/**
 * One host's deploy: a stretcher-deploy query to it alone, with the per-host timeout as the query's
 * timeout (the agent drops an answer that comes later; its handler is not killed, so the deploy there may
 * still finish). Meanwhile the host's membership is watched: a host that fails or leaves ends its wait.
 */
async function deployOn(name: string, url: string, rpcAddr: string, timeoutMs: number, interrupted: AbortSignal): Promise<HostResult> {
  const failure = (error: string): HostResult => ({ name, result: 'failure', error });
  const stop = new AbortController();
  let gone: string | undefined;
  const watching = (async () => {
    while (!stop.signal.aborted) {
      await sleep(LIVENESS_POLL_MS, undefined, { signal: stop.signal }).catch(() => {});
      if (stop.signal.aborted) return;
      const status = await memberStatus(rpcAddr, name).catch(() => 'alive');
      if (status !== 'alive') {
        gone = status ?? 'no longer a member';
        stop.abort();
      }
    }
  })();
  try {
    const { acks, answers } = await query(DEPLOY_QUERY, url, { rpcAddr, nodes: [name], timeoutMs, signal: AbortSignal.any([stop.signal, interrupted]) });
    const payload = answers.get(name);
    if (payload !== undefined) return hostResult(name, payload);
    if (interrupted.aborted) return failure(`the rollout was ${errorMessage(interrupted.reason)} before ${name} answered (its deploy may still finish there)`);
    if (gone) return failure(`member ${name} is ${gone}: it stopped before answering`);
    if (!acks.has(name)) return failure(`no acknowledgement from ${name} within ${formatDuration(timeoutMs)}: it is not reachable`);
    return failure(`${name} acknowledged the query but gave no answer within ${formatDuration(timeoutMs)} (a deploy there may still be running; is its query handler stretcher?)`);
  } catch (err) {
    return failure(errorMessage(err));
  } finally {
    stop.abort();
    await watching;
  }
}

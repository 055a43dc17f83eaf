import { fstatSync } from 'node:fs';
import { Writable } from 'node:stream';
import type { DeployRequest } from '../event/parse.js';
import { answerBudget, type DeployAnswer, type DestStatus, encodeDeployAnswer, encodeStatusAnswer } from '../fleet/answer.js';
import { StateStore } from '../host/state.js';
import { errorMessage } from '../shared/errors.js';
import { Log } from '../shared/log.js';
import { Redactor } from '../shared/redact.js';
import type { DeployOutcome } from '../deploy.js';
import type { Invocation } from './flags.js';
import type { Signals } from './signals.js';

/** The queries stretcher answers; any other is left unanswered. */
export const STATUS_QUERY = 'stretcher-status';
export const DEPLOY_QUERY = 'stretcher-deploy';

/** How a requested deploy went: refused before it began (a bad URL or key), skipped (a Consul event seen before), or run. */
export type Requested = { kind: 'refused'; error: unknown } | { kind: 'skipped' } | { kind: 'ran'; outcome: DeployOutcome };

/** cli/deploy.ts's requestedDeploy, handed in (deploy.ts loads this module only for queries). */
export type DeployRunner = (request: Extract<DeployRequest, { kind: 'deploy' }>, inv: Invocation, env: NodeJS.ProcessEnv, log: Log, signals: Signals) => Promise<Requested>;

/**
 * A Serf query handler (SERF_EVENT=query). The agent sends back what the handler printed, stdout and
 * stderr together, and only when it exits 0: so the answer is one line of JSON on stdout, the exit status
 * is 0 whatever the deploy did, and the log stays off stderr unless stderr was sent elsewhere than stdout
 * (`2>>/var/log/stretcher.log`). The whole log is kept in the state directory either way
 * (`stretcher status --dest D --log`).
 */
export async function queryCommand(request: Extract<DeployRequest, { kind: 'query' }>, inv: Invocation, env: NodeJS.ProcessEnv, signals: Signals, requestedDeploy: DeployRunner): Promise<number> {
  const budget = answerBudget(env.SERF_SELF_NAME ?? '');
  const redactor = Redactor.fromEnv(env);
  const log = new Log(inv.values.logFormat, stderrApart() ? process.stderr : discard(), () => new Date(), redactor);
  const answer = (line: string): number => {
    process.stdout.write(`${line}\n`);
    return 0;
  };
  if (request.name === STATUS_QUERY) {
    const state = new StateStore(inv.values.stateDir, log);
    const deploys: DestStatus[] = (await state.allDeploys()).map((r) => {
      const release = r.release ?? r.last_success?.release;
      return { dest: r.dest, result: r.result, ...(r.checksum ? { checksum: r.checksum } : {}), ...(release ? { release } : {}), time: r.time };
    });
    return answer(redactor.text(encodeStatusAnswer(deploys, budget)));
  }
  if (request.name !== DEPLOY_QUERY) {
    log.info(`ignoring serf query ${JSON.stringify(request.name)}: stretcher answers ${STATUS_QUERY} and ${DEPLOY_QUERY}`);
    return 0;
  }
  if (!request.payload) return answer(encodeDeployAnswer({ result: 'failure', error: `the ${DEPLOY_QUERY} query needs a manifest URL as its payload` }, budget));
  const ran = await requestedDeploy({ kind: 'deploy', url: request.payload, origin: 'serf query', eventName: DEPLOY_QUERY }, inv, env, log, signals);
  let result: DeployAnswer;
  if (ran.kind === 'ran') {
    const { outcome } = ran;
    const m = outcome.manifest;
    result = {
      result: outcome.ok ? 'success' : 'failure',
      ...(m?.dest ? { dest: m.dest } : {}),
      ...(outcome.ok && m?.identity ? { checksum: m.identity } : {}),
      ...(outcome.release ? { release: outcome.release } : {}),
      ...(outcome.ok ? {} : { error: errorMessage(outcome.error) }),
    };
  } else result = { result: 'failure', error: ran.kind === 'refused' ? errorMessage(ran.error) : 'skipped' };
  if (result.error !== undefined) result.error = redactor.text(result.error);
  return answer(encodeDeployAnswer(result, budget));
}

/** Whether stderr goes somewhere else than stdout: Serf gives a handler one pipe for both. */
function stderrApart(): boolean {
  try {
    const out = fstatSync(1);
    const err = fstatSync(2);
    return out.dev !== err.dev || out.ino !== err.ino;
  } catch {
    return false;
  }
}

function discard(): Writable {
  return new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });
}

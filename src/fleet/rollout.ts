import { type DeployAnswer, parseAnswer } from './answer.js';

/** How one host's deploy went, as `rollout --json` lists it. */
export interface HostResult {
  name: string;
  /** skipped: never asked, because the rollout stopped first. */
  result: 'success' | 'failure' | 'skipped';
  error?: string;
  checksum?: string;
  release?: string;
}

export interface RolloutPlan {
  /** Hosts deployed one at a time first. */
  canary: number;
  /** Hosts deployed in parallel after the canaries. */
  batch: number;
  /** The rollout stops before the next batch once more hosts than this have failed. */
  maxFailures: number;
}

export interface RolloutReport {
  nodes: HostResult[];
  /** Whether hosts were left unasked because too many failed. */
  stopped: boolean;
}

/** The groups hosts are asked in: each canary alone, then batches; names in the order given. */
export function groups(names: readonly string[], plan: Pick<RolloutPlan, 'canary' | 'batch'>): string[][] {
  const out: string[][] = [];
  const canaries = Math.min(plan.canary, names.length);
  for (let i = 0; i < canaries; i++) out.push([names[i] as string]);
  for (let i = canaries; i < names.length; i += plan.batch) out.push(names.slice(i, i + plan.batch));
  return out;
}

/**
 * Deploys group after group, each group's hosts in parallel, and stops before the next group once more
 * than maxFailures hosts failed; the hosts after that are reported as skipped. `deployOn` never throws:
 * a host that cannot be asked, or does not answer, is a failure.
 */
export async function rollout(
  names: readonly string[],
  plan: RolloutPlan,
  deployOn: (name: string) => Promise<HostResult>,
  onResult: (r: HostResult) => void = () => {},
  /** Aborted (a signal to the rollout): no further group is started. */
  signal?: AbortSignal,
): Promise<RolloutReport> {
  const results = new Map<string, HostResult>();
  let failures = 0;
  let stopped = false;
  for (const group of groups(names, plan)) {
    if (failures > plan.maxFailures || signal?.aborted) {
      stopped = true;
      break;
    }
    await Promise.all(
      group.map(async (name) => {
        const r = await deployOn(name);
        results.set(name, r);
        if (r.result !== 'success') failures++;
        onResult(r);
      }),
    );
  }
  const nodes = names.map((name): HostResult => results.get(name) ?? { name, result: 'skipped' });
  return { nodes, stopped };
}

/** A host's answer to stretcher-deploy, made a HostResult; an answer that is not one is a failure saying what came. */
export function hostResult(name: string, payload: string): HostResult {
  const answer = parseAnswer<DeployAnswer>(payload);
  if (!answer || (answer.result !== 'success' && answer.result !== 'failure')) {
    return { name, result: 'failure', error: `answered something that is not stretcher's: ${JSON.stringify(payload.slice(0, 200))}` };
  }
  return {
    name,
    result: answer.result,
    ...(typeof answer.error === 'string' ? { error: answer.error } : {}),
    ...(typeof answer.checksum === 'string' ? { checksum: answer.checksum } : {}),
    ...(typeof answer.release === 'string' ? { release: answer.release } : {}),
  };
}

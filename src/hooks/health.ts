import { setTimeout as sleep } from 'node:timers/promises';
import type { HealthCheck } from '../manifest/types.js';
import type { RunContext } from '../shared/context.js';
import { formatDuration } from '../shared/duration.js';
import { errorMessage, StretcherError } from '../shared/errors.js';
import { redactUrl } from '../shared/redact.js';
import { USER_AGENT } from '../shared/version.js';
import { runShell } from './run.js';

export class HealthError extends StretcherError {
  override name = 'HealthError';
  constructor(message: string) {
    super('HEALTH_FAILED', message);
  }
}

/** One try's verdict, and what it saw, for the log and for the error that quotes the last one. */
interface Try {
  healthy: boolean;
  said: string;
}

/** "command "curl -fsS ..." and GET http://..., every 2s for up to 1m": for the log and `validate`. */
export function describeHealth(check: HealthCheck): string {
  const what = [check.command !== undefined ? `command ${JSON.stringify(check.command)}` : '', check.url !== undefined ? `GET ${redactUrl(check.url)}` : ''].filter(Boolean).join(' and ');
  return `${what}, every ${formatDuration(check.intervalMs)} for up to ${formatDuration(check.timeoutMs)}`;
}

/**
 * The health gate after post: tries the command and/or the URL until both say healthy, every interval,
 * until the timeout. Each try is bounded by the time left, so a check that hangs cannot stretch the gate.
 * Throws a HealthError quoting the last try; a signal aborts it with the signal's reason.
 */
export async function awaitHealthy(check: HealthCheck, ctx: RunContext): Promise<void> {
  const { log, signal } = ctx;
  const deadline = performance.now() + check.timeoutMs;
  log.info(`health: checking ${describeHealth(check)}`);
  for (let attempt = 1; ; attempt++) {
    const result = await tryOnce(check, ctx, Math.ceil(Math.max(1000, deadline - performance.now())));
    if (result.healthy) {
      log.info(`health: try ${attempt}: healthy (${result.said})`);
      return;
    }
    log.warn(`health: try ${attempt}: not healthy: ${result.said}`);
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new HealthError(`health check failed: not healthy after ${formatDuration(check.timeoutMs)} (${attempt} ${attempt === 1 ? 'try' : 'tries'}); last result: ${result.said}`);
    }
    try {
      await sleep(Math.ceil(Math.min(check.intervalMs, left)), undefined, { signal });
    } catch {
      throw signal.reason;
    }
  }
}

/** The command, then the URL: healthy only when every check given passes. */
async function tryOnce(check: HealthCheck, ctx: RunContext, budgetMs: number): Promise<Try> {
  const results: Try[] = [];
  if (check.command !== undefined) results.push(await tryCommand(check.command, ctx, budgetMs));
  if (check.url !== undefined) results.push(await tryUrl(check.url, ctx.signal, budgetMs));
  return { healthy: results.every((r) => r.healthy), said: results.map((r) => r.said).join('; ') };
}

async function tryCommand(command: string, ctx: RunContext, budgetMs: number): Promise<Try> {
  try {
    await runShell(command, 'health', { ...ctx, timeoutMs: budgetMs });
    return { healthy: true, said: `command ${JSON.stringify(command)} exited 0` };
  } catch (err) {
    if (ctx.signal.aborted) throw ctx.signal.reason;
    return { healthy: false, said: errorMessage(err).replace(/^health command failed: /, 'command ') };
  }
}

/**
 * GET with Node's fetch, directly: a health URL names this host's own service, which no proxy should
 * stand between. `user:pass@` becomes Basic auth (fetch refuses URLs that carry credentials).
 */
async function tryUrl(url: string, signal: AbortSignal, budgetMs: number): Promise<Try> {
  const shown = redactUrl(url);
  const target = new URL(url);
  const headers: Record<string, string> = { 'user-agent': USER_AGENT };
  if (target.username || target.password) {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString('base64')}`;
    target.username = '';
    target.password = '';
  }
  const timeout = AbortSignal.timeout(budgetMs);
  try {
    const res = await fetch(target, { headers, signal: AbortSignal.any([signal, timeout]) });
    await res.body?.cancel().catch(() => {});
    return { healthy: res.status >= 200 && res.status < 300, said: `GET ${shown} answered ${res.status}` };
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (timeout.aborted) return { healthy: false, said: `GET ${shown} gave no answer within ${formatDuration(budgetMs)}` };
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return { healthy: false, said: `GET ${shown} failed: ${cause?.code ?? cause?.message ?? errorMessage(err)}` };
  }
}

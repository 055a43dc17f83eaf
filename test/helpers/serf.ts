import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { until } from './wait.js';

const run = promisify(execFile);

/** A TCP port nobody listens on right now (serf also uses it for UDP gossip). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Agent {
  name: string;
  bind: string;
  rpc: string;
  process: ChildProcess;
  logFile: string;
}

/**
 * A real serf agent on 127.0.0.1, stopped by PID when the test ends, whatever its outcome.
 *
 * `-profile=lan`, not `local`: the local profile gives a TCP push/pull 1 s and a UDP probe 200 ms, which a
 * loaded CI machine (two test files at once on two cores) overruns, so joins fail and members flap.
 */
export async function startAgent(t: TestContext, name: string, handlers: string[], env: NodeJS.ProcessEnv, logDir: string): Promise<Agent> {
  const bind = `127.0.0.1:${await freePort()}`;
  let rpc = bind;
  while (rpc === bind) rpc = `127.0.0.1:${await freePort()}`;
  const logFile = path.join(logDir, `serf-${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn('serf', ['agent', `-node=${name}`, `-bind=${bind}`, `-rpc-addr=${rpc}`, '-profile=lan', '-log-level=info', ...handlers.map((h) => `-event-handler=${h}`)], {
    env,
    stdio: ['ignore', fd, fd],
  });
  // Without the serf package the spawn fails asynchronously: report that, not an uncaught ENOENT.
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  t.after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      const exited = new Promise((resolve) => child.once('exit', resolve));
      if ((await Promise.race([exited, sleep(3000, 'timeout')])) === 'timeout') child.kill('SIGKILL');
    }
  });
  await until(async () => {
    if (spawnError) throw new Error(`cannot start serf (install Debian's serf package, as .ci/run does): ${spawnError.message}`);
    if (child.exitCode !== null) throw new Error(`serf agent ${name} exited with ${child.exitCode}; see ${logFile}`);
    return (await serf('members', `-rpc-addr=${rpc}`).catch(() => '')).length > 0;
  }, `agent ${name} RPC on ${rpc}`);
  return { name, bind, rpc, process: child, logFile };
}

/** Names of the members `agent` sees alive. */
async function aliveMembers(agent: Agent): Promise<string[]> {
  const out = await serf('members', `-rpc-addr=${agent.rpc}`, '-status=alive').catch(() => '');
  return out
    .split('\n')
    .map((line) => line.split(/\s+/)[0] ?? '')
    .filter(Boolean)
    .sort();
}

/**
 * Joins the agents into one cluster and waits until every agent sees every other alive.
 *
 * Each agent that does not yet see the whole cluster joins all the others itself, over TCP push/pull, so
 * membership never hangs on one UDP gossip message; a join that fails is retried on the next round, and
 * its error is reported if the cluster never forms.
 */
export async function formCluster(agents: Agent[], limitMs = 60_000): Promise<void> {
  const all = agents.map((a) => a.name).sort();
  const complete = (names: string[]) => names.length === all.length && names.every((n, i) => n === all[i]);
  const errors = new Map<string, string>();
  let views: string[][] = [];
  let lastJoin = 0;
  try {
    await until(
      async () => {
        views = await Promise.all(agents.map(aliveMembers));
        if (views.every(complete)) return true;
        if (Date.now() - lastJoin >= 2000) {
          lastJoin = Date.now();
          await Promise.all(
            agents.map(async (agent, i) => {
              if (complete(views[i] ?? [])) return;
              const others = agents.filter((o) => o !== agent).map((o) => o.bind);
              await serf('join', `-rpc-addr=${agent.rpc}`, ...others).then(
                () => errors.delete(agent.name),
                (err: Error) => errors.set(agent.name, err.message),
              );
            }),
          );
        }
        return false;
      },
      `a ${all.length}-node cluster`,
      limitMs,
    );
  } catch (err) {
    const seen = agents.map((a, i) => `${a.name} sees [${(views[i] ?? []).join(' ')}]`).join('; ');
    const failed = [...errors].map(([n, e]) => `${n}: ${e}`).join('; ');
    throw new Error(`${(err as Error).message}: ${seen}${failed ? `; last join errors: ${failed}` : ''}`);
  }
}

/** Runs the serf CLI; a non-zero exit rejects with what serf printed. */
export async function serf(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('serf', args, { timeout: 15_000 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    const said = `${e.stderr ?? ''}${e.stdout ?? ''}`.trim().replace(/\s+/g, ' ');
    throw new Error(`serf ${args[0] ?? ''} failed: ${said || e.message}`);
  }
}

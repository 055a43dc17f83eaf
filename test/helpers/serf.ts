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

/** A real serf agent on 127.0.0.1, stopped by PID when the test ends, whatever its outcome. */
export async function startAgent(t: TestContext, name: string, handlers: string[], env: NodeJS.ProcessEnv, logDir: string): Promise<Agent> {
  const bind = `127.0.0.1:${await freePort()}`;
  const rpc = `127.0.0.1:${await freePort()}`;
  const logFile = path.join(logDir, `serf-${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(
    'serf',
    ['agent', `-node=${name}`, `-bind=${bind}`, `-rpc-addr=${rpc}`, '-profile=local', '-log-level=info', ...handlers.map((h) => `-event-handler=${h}`)],
    { env, stdio: ['ignore', fd, fd] },
  );
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
    return (await serf('members', `-rpc-addr=${rpc}`)).length > 0;
  }, `agent ${name} RPC on ${rpc}`);
  return { name, bind, rpc, process: child, logFile };
}

export async function serf(...args: string[]): Promise<string> {
  try {
    const { stdout } = await run('serf', args, { timeout: 10_000 });
    return stdout;
  } catch {
    return '';
  }
}

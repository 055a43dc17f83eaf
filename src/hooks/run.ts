import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatDuration } from '../shared/duration.js';
import { StretcherError } from '../shared/errors.js';
import type { RunContext } from '../shared/context.js';

export type Phase = 'pre' | 'post' | 'health' | 'success' | 'failure';

/** The context a program runs in; aborting its signal kills the program's whole process group. */
export interface RunOptions extends RunContext {
  /** Given to the command on stdin (success/failure get the log); otherwise stdin is /dev/null. */
  input?: string;
  /** rsync runs through here too; its output lines are labelled with this. */
  label?: string;
  /** Past this, the whole process group is killed and the command fails (command_timeout). 0 or absent: no limit. */
  timeoutMs?: number;
  /** A program whose stderr is only errors (rsync): logged at error level, the last lines said in its failure. */
  stderrIsErrors?: boolean;
}

/** How many of such a program's last stderr lines its failure message quotes. */
const QUOTED_ERROR_LINES = 3;

export class CommandError extends StretcherError {
  override name = 'CommandError';
  constructor(message: string, code: 'COMMAND_FAILED' | 'COMMAND_TIMEOUT' = 'COMMAND_FAILED') {
    super(code, message);
  }
}

/** After SIGTERM, how long a process group gets before SIGKILL. */
const KILL_GRACE_MS = 5000;
/** After SIGKILL, how long to wait for the group to be gone (a process in uninterruptible sleep may linger). */
const KILL_WAIT_MS = 2000;
const GROUP_POLL_MS = 50;
/**
 * After the command exits, how long to keep reading output still arriving from children it left running
 * (`nohup server &`). Waiting for their pipes to close, as execa and Go's exec do, would hang the deploy
 * for as long as the daemon lives.
 */
const DRAIN_MS = 200;

/**
 * Runs one program in its own process group, output streamed into the log line by line. Chosen over execa
 * because execa's promise settles only when every holder of the pipes has closed them (a daemon started by
 * a post command would hang the deploy), and because kills must reach the whole group, not only `sh`.
 *
 * A program stopped by the signal or its timeout settles only once its whole group is gone: a child that
 * ignores SIGTERM gets SIGKILL after the grace even when `sh` itself exited at once, and the dest lock
 * (released after this returns) is never let go while an old `pre` still runs.
 */
export function runProgram(file: string, args: string[], opts: RunOptions): Promise<void> {
  const { log, signal } = opts;
  const label = opts.label ?? file;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const errorLines: string[] = [];
    const onStderr = (line: string): void => {
      if (!opts.stderrIsErrors) return log.output(label, line);
      log.error(line, { source: label });
      errorLines.push(line);
      if (errorLines.length > QUOTED_ERROR_LINES) errorLines.shift();
    };
    const readers = [lines(child.stdout as Readable, (line) => log.output(label, line)), lines(child.stderr as Readable, onStderr)];
    let stopped: Promise<void> | undefined;
    let timedOut = false;
    const stop = (): void => {
      stopped ??= killGroup(child.pid, () => log.warn(`${label}: still running ${formatDuration(KILL_GRACE_MS)} after SIGTERM; sending SIGKILL to its process group`));
    };
    signal.addEventListener('abort', stop, { once: true });
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          stop();
        }, opts.timeoutMs)
      : undefined;
    if (opts.input !== undefined && child.stdin) {
      // A command that never reads stdin (echo done) closes the pipe early: that is fine.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
    child.once('error', (err) => {
      signal.removeEventListener('abort', stop);
      clearTimeout(timer);
      reject(new CommandError(`cannot run ${label}: ${err.message}`));
    });
    child.once('exit', (code, sig) => {
      signal.removeEventListener('abort', stop);
      clearTimeout(timer);
      // A killed group's last output is read once it is gone; a daemon's pipes are let go after DRAIN_MS.
      void Promise.resolve(stopped)
        .then(() => {
          const drainTimer = setTimeout(() => {
            for (const r of readers) r.stop();
          }, DRAIN_MS);
          return Promise.all(readers.map((r) => r.done)).finally(() => clearTimeout(drainTimer));
        })
        .then(() => {
          if (signal.aborted) return reject(signal.reason);
          if (timedOut) return reject(new CommandError(`${label} timed out after ${formatDuration(opts.timeoutMs as number)} (command_timeout); its process group was killed`, 'COMMAND_TIMEOUT'));
          if (code === 0) return resolve();
          const how = sig ? `was killed by ${sig}` : `exited with status ${code}`;
          reject(new CommandError(`${label} ${how}${errorLines.length ? `: ${errorLines.join('; ')}` : ''}`));
        });
    });
  });
}

/** `sh -c ITEM`, as Go stretcher runs each command. */
export function runShell(command: string, phase: Phase, opts: Omit<RunOptions, 'label'>): Promise<void> {
  opts.log.info(`${phase}: ${command}`);
  return runProgram('sh', ['-c', command], { ...opts, label: phase }).catch((err: unknown) => {
    if (err instanceof CommandError)
      throw new CommandError(`${phase} command failed: ${JSON.stringify(command)} ${err.message.replace(/^\S+ /, '')}`, err.code === 'COMMAND_TIMEOUT' ? 'COMMAND_TIMEOUT' : 'COMMAND_FAILED');
    throw err;
  });
}

/** Runs commands in order, stopping at the first failure (Go stretcher's rule for every phase). */
export async function runCommands(commands: readonly string[], phase: Phase, opts: Omit<RunOptions, 'label'>): Promise<void> {
  for (const command of commands) await runShell(command, phase, opts);
}

/** SIGTERM to the group, SIGKILL after the grace; settles when no process of the group is left. */
async function killGroup(pid: number | undefined, onEscalate: () => void): Promise<void> {
  if (pid === undefined || !signalGroup(pid, 'SIGTERM')) return;
  const killAt = performance.now() + KILL_GRACE_MS;
  while ((await groupAlive(pid)) && performance.now() < killAt) await sleep(GROUP_POLL_MS);
  if (!(await groupAlive(pid))) return;
  onEscalate();
  signalGroup(pid, 'SIGKILL');
  const giveUpAt = performance.now() + KILL_WAIT_MS;
  while ((await groupAlive(pid)) && performance.now() < giveUpAt) await sleep(GROUP_POLL_MS);
}

/** False when the group no longer exists. */
function signalGroup(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether a process of the group still runs. A killed process stays a zombie until something reaps it,
 * which a container's init may do late: zombies run nothing and hold nothing, so they do not count.
 */
async function groupAlive(pgid: number): Promise<boolean> {
  if (!signalGroup(pgid, 0)) return false;
  const names = await readdir('/proc').catch(() => [] as string[]);
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // After the command name's closing parenthesis: state, ppid, pgrp.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}

function lines(stream: Readable, onLine: (line: string) => void): { done: Promise<void>; stop: () => void } {
  const rl = createInterface({ input: stream, crlfDelay: Infinity });
  rl.on('line', onLine);
  const done = new Promise<void>((resolve) => rl.once('close', resolve));
  return {
    done,
    stop: () => {
      rl.close();
      stream.destroy();
    },
  };
}

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { StretcherError } from '../shared/errors.js';
import type { RunContext } from '../shared/context.js';

export type Phase = 'pre' | 'post' | 'success' | 'failure';

/** The context a program runs in; aborting its signal kills the program's whole process group. */
export interface RunOptions extends RunContext {
  /** Given to the command on stdin (success/failure get the log); otherwise stdin is /dev/null. */
  input?: string;
  /** rsync runs through here too; its output lines are labelled with this. */
  label?: string;
}

export class CommandError extends StretcherError {
  override name = 'CommandError';
  constructor(message: string) {
    super('COMMAND_FAILED', message);
  }
}

/** After SIGTERM, how long a process group gets before SIGKILL. */
const KILL_GRACE_MS = 5000;
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
    const readers = [child.stdout, child.stderr].map((stream) => lines(stream as Readable, (line) => log.output(label, line)));
    let killTimer: NodeJS.Timeout | undefined;
    const kill = (): void => {
      killGroup(child.pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
      killTimer.unref();
    };
    signal.addEventListener('abort', kill, { once: true });
    if (opts.input !== undefined && child.stdin) {
      // A command that never reads stdin (echo done) closes the pipe early: that is fine.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
    child.once('error', (err) => {
      signal.removeEventListener('abort', kill);
      reject(new CommandError(`cannot run ${label}: ${err.message}`));
    });
    child.once('exit', (code, sig) => {
      signal.removeEventListener('abort', kill);
      clearTimeout(killTimer);
      const drained = Promise.all(readers.map((r) => r.done));
      const timer = setTimeout(() => {
        for (const r of readers) r.stop();
      }, DRAIN_MS);
      void drained.then(() => {
        clearTimeout(timer);
        if (signal.aborted) return reject(signal.reason);
        if (code === 0) return resolve();
        const how = sig ? `was killed by ${sig}` : `exited with status ${code}`;
        reject(new CommandError(`${label} ${how}`));
      });
    });
  });
}

/** `sh -c ITEM`, as Go stretcher runs each command. */
export function runShell(command: string, phase: Phase, opts: Omit<RunOptions, 'label'>): Promise<void> {
  opts.log.info(`${phase}: ${command}`);
  return runProgram('sh', ['-c', command], { ...opts, label: phase }).catch((err: unknown) => {
    if (err instanceof CommandError) throw new CommandError(`${phase} command failed: ${JSON.stringify(command)} ${err.message.replace(/^\S+ /, '')}`);
    throw err;
  });
}

/** Runs commands in order, stopping at the first failure (Go stretcher's rule for every phase). */
export async function runCommands(commands: readonly string[], phase: Phase, opts: Omit<RunOptions, 'label'>): Promise<void> {
  for (const command of commands) await runShell(command, phase, opts);
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // Already gone.
  }
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

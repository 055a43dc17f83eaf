import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdir, readdir, readFile, readlink, realpath, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { formatDuration } from '../shared/duration.js';
import { StretcherError } from '../shared/errors.js';
import type { Log } from '../shared/log.js';
import { lockFile } from './paths.js';

export interface DestLock {
  release(): Promise<void>;
}

export interface LockOptions {
  dir: string;
  timeoutMs: number;
  log: Log;
  signal: AbortSignal;
}

/** flock(1) exits with this when --wait runs out. */
const TIMED_OUT = 75;
/** Before saying "waiting", give an uncontended lock this long to come back. */
const QUIET_MS = 300;

/**
 * One deploy per dest at a time, across processes (two watches; a watch and an operator over ssh).
 *
 * The lock is a kernel flock held by util-linux's flock(1), which keeps it while `cat` reads our stdin
 * pipe. Releasing is closing the pipe; if stretcher is killed (even SIGKILL), the kernel closes the pipe,
 * cat exits and the lock goes with it, so a dead deploy never blocks later ones and no stale-lock guessing
 * is needed. The helper runs in its own process group so a terminal's Ctrl-C cannot drop the lock while
 * stretcher is still running its failure commands.
 */
export async function lockDest(dest: string, opts: LockOptions): Promise<DestLock> {
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  const file = lockFile(opts.dir, dest);
  const waitSeconds = (opts.timeoutMs / 1000).toFixed(3);
  let helper: ChildProcessWithoutNullStreams;
  try {
    helper = spawn('flock', ['--exclusive', '--wait', waitSeconds, '--conflict-exit-code', String(TIMED_OUT), file, '-c', 'echo locked; exec cat >/dev/null'], {
      detached: true,
      stdio: 'pipe',
    });
  } catch (err) {
    throw new StretcherError('LOCK_FAILED', `cannot lock ${dest}: ${(err as Error).message}`);
  }
  const stop = (): void => {
    try {
      process.kill(-(helper.pid as number), 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  const started = performance.now();
  const acquired = new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: helper.stdout });
    lines.once('line', () => resolve());
    helper.once('error', (err: NodeJS.ErrnoException) =>
      reject(new StretcherError('LOCK_FAILED', err.code === 'ENOENT' ? 'cannot lock dest: flock(1) is not installed (Debian: util-linux)' : `cannot lock ${dest}: ${err.message}`)),
    );
    helper.once('exit', (code) => reject(code === TIMED_OUT ? 'timeout' : new StretcherError('LOCK_FAILED', `cannot lock ${dest}: flock exited with status ${code}`)));
  });
  const onAbort = (): void => stop();
  opts.signal.addEventListener('abort', onAbort, { once: true });
  // "waiting" is said only when another process really holds the lock: a flock(1) slow to start on a
  // loaded machine is not a contender.
  let said = false;
  const waiting = setInterval(() => {
    void lockHolder(file).then((holder) => {
      if (said || holder === undefined || holder === process.pid) return;
      said = true;
      opts.log.info(`waiting for another deploy to ${dest} (pid ${holder}) to finish (--lock-timeout ${formatDuration(opts.timeoutMs)})`);
    });
  }, QUIET_MS);
  try {
    await acquired;
  } catch (err) {
    stop();
    if (opts.signal.aborted) throw opts.signal.reason;
    if (err === 'timeout') {
      const pid = await lockHolder(file);
      throw new StretcherError('LOCK_TIMEOUT', `another deploy to ${dest}${pid ? ` (pid ${pid})` : ''} still holds its lock after ${formatDuration(opts.timeoutMs)} (--lock-timeout)`);
    }
    throw err;
  } finally {
    clearInterval(waiting);
    opts.signal.removeEventListener('abort', onAbort);
  }
  const waited = performance.now() - started;
  if (said) opts.log.info(`got the lock on ${dest} after ${formatDuration(waited)}`);
  helper.stdout.resume();
  helper.stderr.resume();
  return {
    release: async () => {
      const exited = new Promise((resolve) => (helper.exitCode !== null ? resolve(undefined) : helper.once('exit', resolve)));
      helper.stdin.end();
      await exited;
    },
  };
}

/**
 * The stretcher holding the lock on `file`, from the kernel's own table (/proc/locks): the flock(1)
 * helper that holds it, and that helper's parent. A pid written into the file would be stale the moment
 * its writer exited, and would name this very process on its next deploy.
 */
export async function lockHolder(file: string): Promise<number | undefined> {
  const real = await realpath(file).catch(() => undefined);
  // The file may go between the two calls: then nobody holds it, rather than an error in a timer.
  const ino = real === undefined ? undefined : (await stat(real).catch(() => undefined))?.ino;
  if (real === undefined || ino === undefined) return undefined;
  const table = await readFile('/proc/locks', 'utf8').catch(() => '');
  for (const line of table.split('\n')) {
    // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters are marked "->" and hold nothing.
    const f = line.trim().split(/\s+/);
    if (f[1] !== 'FLOCK' || f[5]?.split(':')[2] !== String(ino)) continue;
    const pid = Number(f[4]);
    // The inode number alone could be another filesystem's: the holder must have this very file open.
    if ((await holdsOpen(pid, real)) === false) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return ppid > 1 ? ppid : pid;
  }
  return undefined;
}

/** Undefined when another user's descriptors cannot be read (stretcher not running as root). */
async function holdsOpen(pid: number, file: string): Promise<boolean | undefined> {
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EACCES' ? undefined : false;
  }
  for (const fd of fds) if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === file) return true;
  return false;
}

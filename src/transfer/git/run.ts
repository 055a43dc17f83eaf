import { spawn } from 'node:child_process';
import { StretcherError } from '../../shared/errors.js';
import type { Log } from '../../shared/log.js';
import { redactText } from '../../shared/redact.js';
import type { GitSource } from './source.js';

export interface GitRunOptions {
  /** The repository git works in (`--git-dir`); none for ls-remote. */
  gitDir?: string;
  /** The source this talks to, if any: only its transport is let through, and a file:// one is read whatever its owner. */
  source?: GitSource;
  env: NodeJS.ProcessEnv;
  log: Log;
  signal: AbortSignal;
  /** Stall limit for http(s) transfers (http.lowSpeedTime), in seconds. */
  stallSeconds?: number;
  /** Takes stdout as it comes instead of collecting it (git archive). */
  stdout?: (chunk: Buffer) => Promise<void> | undefined;
  /** Extra variables (a synthetic commit's dates). */
  extraEnv?: NodeJS.ProcessEnv;
}

export interface GitResult {
  stdout: string;
  /** Every stderr line, redacted: for classifying a failure. */
  stderr: string[];
}

/** git failed; `stderr` holds its redacted lines, for the caller to say what went wrong. */
export class GitError extends StretcherError {
  override name = 'GitError';
  constructor(
    message: string,
    readonly stderr: readonly string[],
    readonly exitCode: number | null,
  ) {
    super('TRANSFER_FAILED', message);
  }
}

/**
 * The configuration every git command runs with, whatever the host's or the repository's: no user or
 * system config (a root ~/.gitconfig with an `insteadOf` or a credential helper must not change what a
 * deploy fetches), no hooks, no fsmonitor, no automatic gc (which could drop objects a deploy is reading),
 * no protocol but the source's own (no `ext::`, nothing a submodule could name), no prompts.
 */
function configArgs(opts: GitRunOptions): string[] {
  const c = (kv: string): string[] => ['-c', kv];
  const args = [
    ...c('core.hooksPath=/dev/null'),
    ...c('core.fsmonitor=false'),
    ...c('core.askPass='),
    ...c('credential.helper='),
    ...c('gc.auto=0'),
    ...c('maintenance.auto=false'),
    ...c('fetch.recurseSubmodules=false'),
    ...c('protocol.allow=never'),
    ...c('advice.detachedHead=false'),
  ];
  const source = opts.source;
  if (source) {
    args.push(...c(`protocol.${source.transport}.allow=always`));
  }
  if (opts.stallSeconds) args.push(...c('http.lowSpeedLimit=1'), ...c(`http.lowSpeedTime=${opts.stallSeconds}`));
  return args;
}

/**
 * Options of a fetch or ls-remote from `source`. A file:// repository owned by another user is read, not
 * used: upload-pack reads its objects and runs none of its hooks or configured commands
 * (uploadpack.packObjectsHook is honoured only from protected config), so git's "dubious ownership"
 * refusal is lifted for the source alone. `-c` would not reach it (git clears GIT_CONFIG_PARAMETERS for a
 * local upload-pack), hence the upload-pack command itself, which git runs through sh (so `*` is quoted).
 */
export function sourceArgs(source: GitSource): string[] {
  return source.transport === 'file' ? ["--upload-pack=git -c 'safe.directory=*' upload-pack"] : [];
}

/** stretcher's environment without git's own variables (GIT_DIR, GIT_CONFIG_PARAMETERS...), but with ssh's. */
function gitEnv(opts: GitRunOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(opts.env)) if (!k.startsWith('GIT_') || ['GIT_SSH', 'GIT_SSH_COMMAND', 'GIT_SSH_VARIANT', 'GIT_PROXY_COMMAND'].includes(k)) env[k] = v;
  return {
    ...env,
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_ASKPASS: '',
    SSH_ASKPASS: '',
    // ssh must never ask (a host key, a passphrase): it fails instead, and the error says so.
    ...(env.GIT_SSH_COMMAND || env.GIT_SSH ? {} : { GIT_SSH_COMMAND: 'ssh -o BatchMode=yes' }),
    LC_ALL: 'C',
    ...opts.extraEnv,
  };
}

/**
 * Runs the system's git in its own process group (an abort kills it and its helpers: ssh, upload-pack),
 * its stderr into the log line by line with credentials redacted. Resolves with stdout, or rejects with a
 * GitError carrying git's own lines.
 */
export function runGit(args: readonly string[], opts: GitRunOptions): Promise<GitResult> {
  const full = [...configArgs(opts), ...(opts.gitDir ? [`--git-dir=${opts.gitDir}`] : []), ...args];
  return new Promise((resolve, reject) => {
    opts.signal.throwIfAborted();
    const child = spawn('git', full, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: gitEnv(opts) });
    const out: Buffer[] = [];
    const err: string[] = [];
    let partial = '';
    const kill = (): void => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    opts.signal.addEventListener('abort', kill, { once: true });
    let pending: Promise<void> = Promise.resolve();
    let sinkFailed: unknown;
    child.stdout.on('data', (chunk: Buffer) => {
      if (!opts.stdout) return void out.push(chunk);
      const wait = opts.stdout(chunk);
      if (wait) {
        child.stdout.pause();
        pending = wait.then(
          () => void child.stdout.resume(),
          (e: unknown) => {
            sinkFailed = e;
            kill();
          },
        );
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split(/\r?\n|\r/);
      partial = lines.pop() ?? '';
      for (const line of lines) said(line);
    });
    const said = (line: string): void => {
      const clean = redactText(line.trim());
      if (!clean) return;
      err.push(clean);
      opts.log.info(`git: ${clean}`);
    };
    child.once('error', (e: NodeJS.ErrnoException) => {
      opts.signal.removeEventListener('abort', kill);
      reject(new StretcherError('TRANSFER_FAILED', e.code === 'ENOENT' ? 'git is not installed (Debian: apt-get install git)' : `cannot run git: ${e.message}`));
    });
    child.once('close', (code) => {
      opts.signal.removeEventListener('abort', kill);
      if (partial) said(partial);
      void pending.then(() => {
        if (opts.signal.aborted) return reject(opts.signal.reason);
        if (sinkFailed !== undefined) return reject(sinkFailed);
        if (code !== 0) return reject(new GitError(`git ${subcommand(args)} failed${err.length ? `: ${err[err.length - 1]}` : ` with status ${code}`}`, err, code));
        resolve({ stdout: Buffer.concat(out).toString('utf8'), stderr: err });
      });
    });
  });
}

/** `archive` in `-c tar.umask=022 archive ...`: the subcommand, for messages. */
function subcommand(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '-c') i++;
    else if (!args[i]?.startsWith('-')) return args[i] as string;
  }
  return '';
}

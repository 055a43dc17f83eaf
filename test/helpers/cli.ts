import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/**
 * The stretcher under test. STRETCHER_TEST_BIN names an executable to run instead of dist/cli.js on this
 * Node (the one-file build, `STRETCHER_TEST_BIN=dist/stretcher-linux-x64`), so that every end-to-end test
 * also checks the program as it is shipped. The children's environment never carries it (cleanEnv).
 */
export const BIN_UNDER_TEST: string | undefined = process.env.STRETCHER_TEST_BIN ? path.resolve(process.env.STRETCHER_TEST_BIN) : undefined;

/** The argv that starts stretcher, before its own arguments: every test that runs it goes through this. */
export const STRETCHER_ARGV: readonly [string, ...string[]] = BIN_UNDER_TEST ? [BIN_UNDER_TEST] : [process.execPath, CLI];

/** STRETCHER_ARGV as a shell command line (for serf handlers and pipelines). */
export const STRETCHER_SHELL: string = STRETCHER_ARGV.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  args?: string[];
  stdin?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Sanity bound only; tests do not assert timings. */
  timeoutMs?: number;
  onSpawn?: (pid: number) => void;
  /** Sees stderr as it arrives (to wait for a line before signalling, say). */
  onStderr?: (text: string) => void;
}

/**
 * Environment for a child stretcher: no stray CONSUL_/SERF_/AWS_ variables or proxy settings from the
 * machine running the tests (a CI machine's NO_PROXY or HTTP_PROXY would change where requests go).
 */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(CONSUL_|SERF_|AWS_|STRETCHER_)/.test(k) || /^(https?|no|all)_proxy$/i.test(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** Runs the built CLI as a user would: argv, stdin, environment; returns exit code and output. */
export function runStretcher(opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const [file, ...before] = STRETCHER_ARGV;
    const child = spawn(file, [...before, ...(opts.args ?? [])], {
      env: opts.env ?? cleanEnv(),
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(stderr);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.stdin ?? '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`stretcher did not finish within ${opts.timeoutMs ?? 60_000}ms\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

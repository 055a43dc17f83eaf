import type { Log } from './log.js';

/**
 * Where a deploy's work happens and how it is told to stop: the directory commands run in (the one
 * stretcher was started in), the environment they get, the log their output goes to, and the signal that
 * aborts them (SIGTERM, or a timeout).
 */
export interface RunContext {
  cwd: string;
  env: NodeJS.ProcessEnv;
  log: Log;
  signal: AbortSignal;
}

import { UsageError } from './errors.js';

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const BARE_NUMBER = /^\d+(\.\d*)?$|^\.\d+$/;
const GO_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * Go stretcher v1.1.0 took seconds as plain numbers and its HEAD takes Go durations; existing handler
 * configurations use both, so a bare number is seconds and anything else must be a Go duration.
 * Returns milliseconds.
 */
export function parseDuration(text: string, flag: string): number {
  const s = text.trim();
  if (BARE_NUMBER.test(s)) return Number(s) * 1000;
  let total = 0;
  GO_PART.lastIndex = 0;
  let matched = 0;
  while (GO_PART.lastIndex < s.length) {
    const m = GO_PART.exec(s);
    if (!m) break;
    total += Number(m[1]) * (UNIT_MS[m[2] as string] ?? 0);
    matched = GO_PART.lastIndex;
  }
  if (s === '' || matched !== s.length) {
    throw new UsageError(`invalid duration ${JSON.stringify(text)} for --${flag}: use seconds (30, 1.5) or a Go duration (500ms, 10s, 1m30s)`);
  }
  return total;
}

/** "1m30s", "250ms": for log lines, where a reader wants Go-like brevity. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (Number.isInteger(s) && s < 60) return `${s}s`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${Math.round(s - m * 60)}s`;
}

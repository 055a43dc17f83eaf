import { formatBytes } from '../shared/units.js';
import { formatDuration } from '../shared/duration.js';
import type { Log } from '../shared/log.js';

const LINE_EVERY_MS = 5000;
const BAR_EVERY_MS = 200;

/**
 * Download progress: a redrawn bar on a terminal; elsewhere (journald, a handler's log file) one line every
 * few seconds, and nothing for downloads shorter than that.
 */
export class Progress {
  private readonly started: number;
  private lastShown: number;
  private bytes = 0;

  constructor(
    private readonly log: Log,
    private readonly label: string,
    private readonly total: number | undefined,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.started = now();
    this.lastShown = this.started;
  }

  add(n: number): void {
    this.bytes += n;
    const now = this.now();
    const every = this.log.isTerminal ? BAR_EVERY_MS : LINE_EVERY_MS;
    if (now - this.lastShown < every) return;
    this.lastShown = now;
    const elapsed = (now - this.started) / 1000;
    const rate = this.bytes / Math.max(elapsed, 0.001);
    const pct = this.total ? Math.min(100, (this.bytes / this.total) * 100) : undefined;
    const of = this.total ? ` of ${formatBytes(this.total)}` : '';
    if (this.log.isTerminal) {
      const width = 24;
      const filled = pct === undefined ? 0 : Math.round((pct / 100) * width);
      const bar = pct === undefined ? '' : `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct.toFixed(0).padStart(3)}% `;
      this.log.progress(`${this.label} ${bar}${formatBytes(this.bytes)}${of} ${formatBytes(rate)}/s`);
    } else {
      const eta = this.total && rate > 0 ? `, ${formatDuration(((this.total - this.bytes) / rate) * 1000)} left` : '';
      this.log.info(`${this.label}: ${formatBytes(this.bytes)}${of}${pct === undefined ? '' : ` (${pct.toFixed(0)}%)`}, ${formatBytes(rate)}/s${eta}`);
    }
  }

  done(): void {
    this.log.clearProgress();
  }
}

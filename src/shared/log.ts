import { KeptLog } from './kept-log.js';
import { Redactor } from './redact.js';

export type LogFormat = 'text' | 'json';

export type Level = 'info' | 'warn' | 'error';
export type Fields = Record<string, string | number | boolean | undefined>;

/**
 * The log goes to stderr (text or JSON lines) and is also kept in memory, always as readable text, because
 * success and failure commands receive the whole log on stdin: that is how people wire notifications.
 * Every line is scrubbed of credentials on the way in.
 */
export class Log {
  /** Capped (head and tail), so that rsync -v on a huge tree or a chatty build step cannot exhaust memory. */
  private readonly kept = new KeptLog();
  /** A progress bar currently drawn on a terminal, to be erased before the next line. */
  private barShown = false;

  constructor(
    private readonly format: LogFormat = 'text',
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr,
    private readonly now: () => Date = () => new Date(),
    /** Scrubs every line: URL credentials, and secret values (an AWS key, a token) even if a command echoes them. */
    readonly redactor: Redactor = new Redactor(),
  ) {}

  private scrub(text: string): string {
    return this.redactor.text(text);
  }

  get isTerminal(): boolean {
    return this.format === 'text' && this.out.isTTY === true;
  }

  info(msg: string, fields?: Fields): void {
    this.write('info', msg, fields);
  }

  warn(msg: string, fields?: Fields): void {
    this.write('warn', msg, fields);
  }

  error(msg: string, fields?: Fields): void {
    this.write('error', msg, fields);
  }

  /** A line of a command's output: kept and printed as is, so a hook's own formatting survives. */
  output(source: string, line: string): void {
    this.write('info', line, { source });
  }

  /** Redraws a one-line bar on a terminal; not kept and not emitted elsewhere. */
  progress(text: string): void {
    if (!this.isTerminal) return;
    this.out.write(`\r\x1b[K${text}`);
    this.barShown = true;
  }

  clearProgress(): void {
    if (!this.barShown) return;
    this.out.write('\r\x1b[K');
    this.barShown = false;
  }

  /** The log so far, as success/failure commands receive it. */
  text(): string {
    return this.kept.text();
  }

  private write(level: Level, rawMsg: string, fields?: Fields): void {
    const time = this.now().toISOString();
    const msg = this.scrub(rawMsg);
    const extra = Object.entries(fields ?? {}).filter((e): e is [string, string | number | boolean] => e[1] !== undefined && e[0] !== 'source');
    const suffix = extra.map(([k, v]) => ` ${k}=${formatValue(v)}`).join('');
    const levelTag = level === 'info' ? '' : `${level.toUpperCase()}: `;
    const textLine = `${time} ${levelTag}${msg}${this.scrub(suffix)}`;
    this.kept.push(textLine);
    this.clearProgress();
    if (this.format === 'json') {
      const record: Record<string, unknown> = { time, level, msg };
      if (fields?.source) record.source = fields.source;
      for (const [k, v] of extra) record[k] = typeof v === 'string' ? this.scrub(v) : v;
      this.out.write(`${JSON.stringify(record)}\n`);
    } else {
      this.out.write(`${textLine}\n`);
    }
  }
}

function formatValue(v: string | number | boolean): string {
  const s = String(v);
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

import { StretcherError } from '../shared/errors.js';

/**
 * Go stretcher ran the whole manifest through text/template, so a command such as
 * `docker inspect -f '{{.State.Running}}'` broke the deploy. Only the three functions manifests use are
 * expanded here, with Go's syntax (string or raw-string arguments, pipelines, parentheses, `{{-` / `-}}`
 * trim markers); every other `{{ ... }}` is left exactly as written.
 */

const FUNCTIONS = new Set(['env', 'must_env', 'json_escape']);

export class TemplateError extends StretcherError {
  override name = 'TemplateError';
  constructor(message: string) {
    super('MANIFEST_INVALID', message);
  }
}

export function expandTemplate(text: string, env: NodeJS.ProcessEnv, source = 'manifest'): string {
  return scanTemplate(text, env, source).text;
}

/** One expanded action: its value, the variables it read, and its line in the manifest. */
export interface Expanded {
  value: string;
  variables: string[];
  line: number;
}

export interface Expansion {
  /** The manifest with every action replaced by its value, as Go stretcher expanded it. */
  text: string;
  /** The same with every action replaced by placeholder(i) instead: what the manifest's author wrote. */
  marked: string;
  actions: Expanded[];
}

/** Private-use characters around the action's number: text no manifest has and YAML keeps as it is. */
export const placeholder = (i: number): string => `\uE000${i}\uE001`;
export const PLACEHOLDER = /\uE000(\d+)\uE001/g;
export const HAS_PLACEHOLDER = /\uE000\d+\uE001/;

export function scanTemplate(text: string, env: NodeJS.ProcessEnv, source = 'manifest'): Expansion {
  let out = '';
  let marked = '';
  const actions: Expanded[] = [];
  let pos = 0;
  for (;;) {
    const open = text.indexOf('{{', pos);
    if (open === -1) break;
    const line = lineOf(text, open);
    const action = tryParseAction(text, open, env, () => `${source}:${line}`);
    if (!action) {
      out += text.slice(pos, open + 2);
      marked += text.slice(pos, open + 2);
      pos = open + 2;
      continue;
    }
    let before = text.slice(pos, open);
    if (action.trimLeft) before = before.replace(/\s+$/, '');
    out += before + action.value;
    marked += before + placeholder(actions.length);
    actions.push({ value: action.value, variables: action.variables, line });
    pos = action.end;
    if (action.trimRight) pos += /^\s*/.exec(text.slice(pos))?.[0].length ?? 0;
  }
  return { text: out + text.slice(pos), marked: marked + text.slice(pos), actions };
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

interface Action {
  value: string;
  variables: string[];
  end: number;
  trimLeft: boolean;
  trimRight: boolean;
}

/** Parses `{{ ... }}` at `open` when it calls one of our functions; undefined leaves it to the caller as text. */
function tryParseAction(text: string, open: number, env: NodeJS.ProcessEnv, where: () => string): Action | undefined {
  let i = open + 2;
  let trimLeft = false;
  // Go: "{{- " trims; "{{-3}}" is a number, so the dash must be followed by a space.
  if (text[i] === '-' && /\s/.test(text[i + 1] ?? '')) {
    trimLeft = true;
    i++;
  }
  const p = new Parser(text, i, env, where);
  p.skipSpace();
  if (!p.startsOurs()) return undefined;
  const value = p.pipeline();
  p.skipSpace();
  let trimRight = false;
  if (text.startsWith('-}}', p.pos) && /\s/.test(text[p.pos - 1] ?? '')) {
    trimRight = true;
    p.pos++;
  }
  if (!text.startsWith('}}', p.pos)) p.fail('expected "}}" to close the action');
  return { value, variables: p.variables, end: p.pos + 2, trimLeft, trimRight };
}

class Parser {
  /** The environment variables the action read (env's and must_env's arguments). */
  readonly variables: string[] = [];

  constructor(
    private readonly text: string,
    public pos: number,
    private readonly env: NodeJS.ProcessEnv,
    private readonly where: () => string,
  ) {}

  fail(msg: string): never {
    throw new TemplateError(`${this.where()}: template: ${msg}`);
  }

  skipSpace(): void {
    while (/[ \t\r\n]/.test(this.text[this.pos] ?? '')) this.pos++;
  }

  /** True when the action starts with one of our functions, possibly inside parentheses. */
  startsOurs(): boolean {
    let j = this.pos;
    while (this.text[j] === '(' || /\s/.test(this.text[j] ?? '')) j++;
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(j, j + 32));
    return m !== null && FUNCTIONS.has(m[0]);
  }

  pipeline(): string {
    let value = this.command(undefined);
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] !== '|') return value;
      this.pos++;
      this.skipSpace();
      value = this.command(value);
    }
  }

  private command(piped: string | undefined): string {
    this.skipSpace();
    if (this.text[this.pos] === '(' && piped === undefined) return this.parenthesized();
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.text.slice(this.pos, this.pos + 64));
    if (!m) this.fail('expected a function name');
    const name = m[0];
    if (!FUNCTIONS.has(name)) this.fail(`function ${JSON.stringify(name)} is not supported here (only env, must_env and json_escape)`);
    this.pos += name.length;
    const args: string[] = [];
    for (;;) {
      const before = this.pos;
      this.skipSpace();
      const c = this.text[this.pos];
      if (c === '"' || c === '`') args.push(this.stringLiteral());
      else if (c === '(') args.push(this.parenthesized());
      else {
        this.pos = before;
        break;
      }
    }
    if (piped !== undefined) args.push(piped);
    return this.call(name, args);
  }

  private parenthesized(): string {
    this.pos++;
    const value = this.pipeline();
    this.skipSpace();
    if (this.text[this.pos] !== ')') this.fail('expected ")"');
    this.pos++;
    return value;
  }

  private call(name: string, args: string[]): string {
    switch (name) {
      case 'env': {
        if (args.length === 0) this.fail('env needs at least one argument');
        // Go stretcher: the first set, non-empty variable; otherwise the last argument as written.
        for (const key of args) {
          const v = this.env[key];
          if (v) {
            this.variables.push(key);
            return v;
          }
        }
        return args[args.length - 1] as string;
      }
      case 'must_env': {
        if (args.length !== 1) this.fail('must_env takes exactly one argument');
        const key = args[0] as string;
        this.variables.push(key);
        const v = this.env[key];
        if (v === undefined) this.fail(`must_env: environment variable ${key} is not set`);
        return v;
      }
      default: {
        if (args.length !== 1) this.fail('json_escape takes exactly one argument');
        return jsonEscape(args[0] as string);
      }
    }
  }

  private stringLiteral(): string {
    const quote = this.text[this.pos];
    const start = this.pos;
    this.pos++;
    if (quote === '`') {
      const end = this.text.indexOf('`', this.pos);
      if (end === -1) this.fail('unterminated raw string');
      this.pos = end + 1;
      return this.text.slice(start + 1, end);
    }
    let out = '';
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined || c === '\n') this.fail('unterminated string');
      this.pos++;
      if (c === '"') return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      out += this.escape();
    }
  }

  private escape(): string {
    const c = this.text[this.pos++];
    const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'" };
    if (c !== undefined && c in simple) return simple[c] as string;
    const hexLen = c === 'x' ? 2 : c === 'u' ? 4 : c === 'U' ? 8 : 0;
    if (hexLen) {
      const hex = this.text.slice(this.pos, this.pos + hexLen);
      if (!new RegExp(`^[0-9a-fA-F]{${hexLen}}$`).test(hex)) this.fail(`invalid \\${c} escape`);
      this.pos += hexLen;
      const code = parseInt(hex, 16);
      if (code > 0x10ffff) this.fail('escape out of range');
      return String.fromCodePoint(code);
    }
    const oct = this.text.slice(this.pos - 1, this.pos + 2);
    if (/^[0-7]{3}$/.test(oct)) {
      this.pos += 2;
      return String.fromCharCode(parseInt(oct, 8));
    }
    this.fail(`unknown escape \\${c ?? ''}`);
  }
}

/** Go stretcher's json_escape: encoding/json's output without the quotes, HTML characters escaped as Go does. */
export function jsonEscape(s: string): string {
  return JSON.stringify(s)
    .slice(1, -1)
    .replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

import { formatDuration, parseDuration } from '../shared/duration.js';
import { UsageError } from '../shared/errors.js';
import { closest } from '../shared/suggest.js';
import { parseBandwidth } from '../shared/units.js';
import { COMMANDS, type CommandName } from './commands.js';
import { defaultValues, FLAGS, type FlagKey, type FlagSpec, type FlagValues, type Invocation } from './flags.js';

export interface ParsedArgs extends FlagValues {
  /** The subcommand; undefined: deploy the URL read from stdin, Go stretcher's only mode. */
  command: CommandName | undefined;
  operands: string[];
  spelled: Invocation['spelled'];
}

const BY_NAME = new Map(FLAGS.flatMap((f) => f.names.map((n) => [n, f] as const)));

/**
 * Go's `flag` package accepted `-retry 3`, `-retry=3` and `--retry 3`; Go stretcher's HEAD documents
 * `--retry=3`. Handler configurations in the field use all of them, so all are accepted. Flags may come
 * before or after the subcommand (`stretcher validate m.yml --log-format json`); `--` ends flag parsing.
 * A flag the command does not take is a usage error, with the closest one it does take suggested.
 */
export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedArgs {
  const values = defaultValues(env);
  const record = values as unknown as Record<string, unknown>;
  const given: { spec: FlagSpec; arg: string }[] = [];
  const positionals: string[] = [];
  const spelled: Partial<Record<FlagKey, string>> = {};
  const listsSeen = new Set<FlagKey>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    const spec = BY_NAME.get(name);
    if (!spec) throw new UsageError(`unknown flag ${arg.split('=')[0]}${suggestion(name, FLAGS)}`);
    given.push({ spec, arg: arg.split('=')[0] as string });
    spelled[spec.key] = `--${name}`;
    let raw: string | undefined = eq === -1 ? undefined : body.slice(eq + 1);
    if (spec.kind === 'bool') {
      record[spec.key] = parseBool(raw, name);
      continue;
    }
    if (raw === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`flag -${name} needs a value`);
      raw = argv[++i] as string;
    }
    if (spec.kind === 'list') {
      // The first flag replaces the environment's default; later ones add to it.
      if (listsSeen.has(spec.key)) (record[spec.key] as string[]).push(raw);
      else record[spec.key] = [raw];
      listsSeen.add(spec.key);
      continue;
    }
    record[spec.key] = convert(spec, name, raw);
  }
  const [first, ...rest] = positionals;
  const command = first !== undefined && first in COMMANDS ? (first as CommandName) : undefined;
  const operands = command ? rest : positionals;
  // --help and --version answer whatever else is on the line.
  if (!values.help && !values.version) {
    const accepted = new Set<FlagKey>(COMMANDS[command ?? 'deploy'].flags);
    for (const { spec, arg } of given) {
      if (spec.key === 'help' || spec.key === 'version' || accepted.has(spec.key)) continue;
      const where = command ? `stretcher ${command}` : 'a deploy from stdin';
      const owners = (Object.keys(COMMANDS) as CommandName[]).filter((c) => COMMANDS[c].flags.includes(spec.key));
      const hint = suggestion(
        arg.replace(/^--?/, ''),
        FLAGS.filter((f) => accepted.has(f.key)),
      );
      const belongs = owners.length ? ` (it belongs to ${owners.map((c) => `stretcher ${c}`).join(', ')})` : '';
      throw new UsageError(`${where} does not take ${arg}${hint || belongs}`, command);
    }
  }
  return { ...values, command, operands, spelled };
}

/** " (did you mean --retry?)", when a known flag is a likely typo of `name`. */
function suggestion(name: string, among: readonly FlagSpec[]): string {
  const hint = closest(
    name,
    among.flatMap((f) => f.names.filter((n) => n.length > 1)),
  );
  return hint ? ` (did you mean --${hint}?)` : '';
}

function parseBool(raw: string | undefined, name: string): boolean {
  if (raw === undefined) return true;
  if (/^(1|t|true)$/i.test(raw)) return true;
  if (/^(0|f|false)$/i.test(raw)) return false;
  throw new UsageError(`invalid boolean ${JSON.stringify(raw)} for --${name}`);
}

function convert(spec: FlagSpec, name: string, raw: string): unknown {
  switch (spec.kind) {
    case 'string':
    case 'list':
      return raw;
    case 'int': {
      if (!/^\d+$/.test(raw.trim())) throw new UsageError(`invalid number ${JSON.stringify(raw)} for --${name}: use a whole number >= 0`);
      return Number(raw);
    }
    case 'duration': {
      const ms = parseDuration(raw, name);
      if (spec.minMs !== undefined && ms < spec.minMs) throw new UsageError(`--${name} ${raw} is too short: at least ${formatDuration(spec.minMs)}`);
      return ms;
    }
    case 'bandwidth':
      return parseBandwidth(raw, name);
    case 'size':
      return parseBandwidth(raw, name, 'bytes');
    case 'logformat':
      if (raw !== 'text' && raw !== 'json') throw new UsageError(`invalid value ${JSON.stringify(raw)} for --${name}: use text or json`);
      return raw;
    case 'bool':
      return parseBool(raw, name);
  }
}

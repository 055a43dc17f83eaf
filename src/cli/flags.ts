import { parseBandwidth } from '../shared/units.js';
import { parseDuration } from '../shared/duration.js';
import { UsageError } from '../shared/errors.js';

export type LogFormat = 'text' | 'json';

export interface Options {
  maxBandwidth?: number; // bytes per second
  timeoutMs: number; // 0 = no limit
  randomDelayMs: number;
  retry: number;
  retryWaitMs: number;
  /** Replaces rsync's `-v`; empty drops it. */
  rsyncVerbose: string;
  stateDir: string;
  logFormat: LogFormat;
  maxExtractBytes: number;
  maxExtractEntries: number;
  lockTimeoutMs: number;
  /** PEM files (or, from STRETCHER_VERIFY_KEY, PEM text) of Ed25519 public keys. */
  verifyKeys: string[];
  json: boolean;
  dest?: string;
  force: boolean;
  releasesDir?: string;
  to?: string;
  intervalMs: number;
  /** Undefined: a tenth of the interval. */
  jitterMs?: number;
  help: boolean;
  version: boolean;
  /** Subcommand and its operands ("validate a.yml b.yml"). Empty: deploy from stdin. */
  positionals: string[];
}

type Kind = 'bool' | 'string' | 'list' | 'int' | 'duration' | 'bandwidth' | 'size' | 'logformat';

interface FlagSpec {
  names: string[];
  kind: Kind;
  key: keyof Options;
  help: string;
  valueName?: string;
}

export const FLAGS: FlagSpec[] = [
  {
    names: ['max-bandwidth', 'max-band-width'],
    kind: 'bandwidth',
    key: 'maxBandwidth',
    valueName: 'RATE',
    help: 'limit the archive download to RATE bytes/s (10MB = 10,000,000; 10MiB; 1.5k)',
  },
  {
    names: ['timeout'],
    kind: 'duration',
    key: 'timeoutMs',
    valueName: 'D',
    help: 'give up a transfer (the archive; the manifest) after D, retries included (30 = 30s; 1m30s). 0: none',
  },
  {
    names: ['random-delay'],
    kind: 'duration',
    key: 'randomDelayMs',
    valueName: 'D',
    help: 'sleep a random time in [0, D) before reading stdin, to spread a fleet',
  },
  { names: ['retry'], kind: 'int', key: 'retry', valueName: 'N', help: 'retry failed downloads N times' },
  {
    names: ['retry-wait'],
    kind: 'duration',
    key: 'retryWaitMs',
    valueName: 'D',
    help: 'wait D between retries (default 3s); a server\'s Retry-After wins when longer',
  },
  {
    names: ['rsync-verbose'],
    kind: 'string',
    key: 'rsyncVerbose',
    valueName: 'FLAG',
    help: "rsync's verbosity flag (default -v; '' for none, -vv for more)",
  },
  {
    names: ['state-dir'],
    kind: 'string',
    key: 'stateDir',
    valueName: 'DIR',
    help: 'where deploy records and handled Consul event IDs are kept (env STRETCHER_STATE_DIR; default /var/lib/stretcher)',
  },
  {
    names: ['log-format'],
    kind: 'logformat',
    key: 'logFormat',
    valueName: 'F',
    help: 'text (default) or json: one JSON object per line on stderr',
  },
  {
    names: ['max-extract-size'],
    kind: 'size',
    key: 'maxExtractBytes',
    valueName: 'SIZE',
    help: 'refuse archives that unpack to more than SIZE (default 64GiB)',
  },
  {
    names: ['max-extract-entries'],
    kind: 'int',
    key: 'maxExtractEntries',
    valueName: 'N',
    help: 'refuse archives with more than N entries (default 10000000)',
  },
  {
    names: ['lock-timeout'],
    kind: 'duration',
    key: 'lockTimeoutMs',
    valueName: 'D',
    help: 'wait at most D for another deploy to the same dest to finish (default 10m)',
  },
  {
    names: ['verify-key'],
    kind: 'list',
    key: 'verifyKeys',
    valueName: 'FILE',
    help: 'deploy only manifests whose <url>.sig verifies with this Ed25519 public key (repeatable; env STRETCHER_VERIFY_KEY)',
  },
  { names: ['force'], kind: 'bool', key: 'force', help: 'release strategy: redeploy and re-run hooks even if the checksum is already current' },
  { names: ['json'], kind: 'bool', key: 'json', help: 'status, releases: print JSON' },
  { names: ['dest'], kind: 'string', key: 'dest', valueName: 'PATH', help: 'status, releases, rollback: the dest (for release, the symlink)' },
  { names: ['releases-dir'], kind: 'string', key: 'releasesDir', valueName: 'DIR', help: 'releases, rollback: where releases live (default: releases/ beside dest)' },
  { names: ['to'], kind: 'string', key: 'to', valueName: 'ID', help: 'rollback: the release to switch to (default: the previous one)' },
  { names: ['interval'], kind: 'duration', key: 'intervalMs', valueName: 'D', help: 'watch: poll the manifest every D (default 60s)' },
  { names: ['jitter'], kind: 'duration', key: 'jitterMs', valueName: 'D', help: 'watch: add a random delay in [0, D) to each poll (default: a tenth of the interval)' },
  { names: ['v', 'version'], kind: 'bool', key: 'version', help: 'print the version and exit' },
  { names: ['h', 'help'], kind: 'bool', key: 'help', help: 'print this help and exit' },
];

export function defaultOptions(env: NodeJS.ProcessEnv): Options {
  return {
    timeoutMs: 0,
    randomDelayMs: 0,
    retry: 0,
    retryWaitMs: 3000,
    rsyncVerbose: '-v',
    stateDir: env.STRETCHER_STATE_DIR || '/var/lib/stretcher',
    logFormat: 'text',
    maxExtractBytes: 64 * 1024 ** 3,
    maxExtractEntries: 10_000_000,
    lockTimeoutMs: 10 * 60_000,
    verifyKeys: env.STRETCHER_VERIFY_KEY ? [env.STRETCHER_VERIFY_KEY] : [],
    json: false,
    force: false,
    intervalMs: 60_000,
    help: false,
    version: false,
    positionals: [],
  };
}

const BY_NAME = new Map(FLAGS.flatMap((f) => f.names.map((n) => [n, f] as const)));

/**
 * Go's `flag` package accepted `-retry 3`, `-retry=3` and `--retry 3`; Go stretcher's HEAD documents
 * `--retry=3`. Handler configurations in the field use all of them, so all are accepted here. Flags may
 * also follow a subcommand (`stretcher validate m.yml --log-format json`); `--` ends flag parsing.
 */
export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): Options {
  const opts = defaultOptions(env);
  const values = opts as unknown as Record<string, unknown>;
  const listsSeen = new Set<keyof Options>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      opts.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      opts.positionals.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    const spec = BY_NAME.get(name);
    if (!spec) throw new UsageError(`unknown flag ${arg.split('=')[0]}`);
    let raw: string | undefined = eq === -1 ? undefined : body.slice(eq + 1);
    if (spec.kind === 'bool') {
      values[spec.key] = parseBool(raw, name);
      continue;
    }
    if (raw === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`flag -${name} needs a value`);
      raw = argv[++i] as string;
    }
    if (spec.kind === 'list') {
      // The first flag replaces the environment's default; later ones add to it.
      listsSeen.has(spec.key) ? (values[spec.key] as string[]).push(raw) : (values[spec.key] = [raw]);
      listsSeen.add(spec.key);
      continue;
    }
    values[spec.key] = convert(spec, name, raw);
  }
  return opts;
}

function parseBool(raw: string | undefined, name: string): boolean {
  if (raw === undefined) return true;
  if (/^(1|t|true)$/i.test(raw)) return true;
  if (/^(0|f|false)$/i.test(raw)) return false;
  throw new UsageError(`invalid boolean ${JSON.stringify(raw)} for -${name}`);
}

function convert(spec: FlagSpec, name: string, raw: string): unknown {
  switch (spec.kind) {
    case 'string':
      return raw;
    case 'list':
      return raw;
    case 'int': {
      if (!/^\d+$/.test(raw.trim())) throw new UsageError(`invalid number ${JSON.stringify(raw)} for -${name}: use a whole number >= 0`);
      return Number(raw);
    }
    case 'duration':
      return parseDuration(raw, name);
    case 'bandwidth':
    case 'size':
      return parseBandwidth(raw, name);
    case 'logformat':
      if (raw !== 'text' && raw !== 'json') throw new UsageError(`invalid value ${JSON.stringify(raw)} for -${name}: use text or json`);
      return raw;
    case 'bool':
      return parseBool(raw, name);
  }
}

export function usage(): string {
  const rows = FLAGS.map((f) => {
    const names = f.names.map((n) => (n.length === 1 ? `-${n}` : `--${n}`)).join(', ');
    return [`  ${names}${f.valueName ? ` ${f.valueName}` : ''}`, f.help] as const;
  });
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  const flagLines = rows.map(([left, help]) => left.padEnd(width) + help).join('\n');
  return `stretcher: a deployment agent for Linux servers (a drop-in for fujiwara/stretcher)

Usage:
  echo s3://bucket/app/manifest.yml | stretcher [flags]   deploy the manifest named on stdin
  consul watch -type event -name deploy stretcher         as a Consul event handler
  serf agent -event-handler "user:deploy=stretcher"       as a Serf user-event handler
  stretcher deploy URL                                    deploy URL (for cron jobs and ssh loops)
  stretcher watch URL [--interval D] [--jitter D]         poll URL and deploy whenever it changes
  stretcher validate MANIFEST...                          check manifests (file path or URL), deploy nothing
  stretcher status [--json] [--dest PATH]                 the last deploy of each dest, from the state dir
  stretcher releases --dest PATH [--json]                 list releases (release strategy)
  stretcher rollback --dest PATH [--to ID]                switch dest back to the previous (or named) release

Flags (single or double dash; -flag VALUE or -flag=VALUE):
${flagLines}

Durations: a bare number is seconds (30, 1.5); otherwise a Go duration (500ms, 10s, 1m30s).
Exit status: 0 on success; 1 when a deploy fails (0 under consul watch, which stops on failure);
130/143 when interrupted by SIGINT/SIGTERM (watch: 0); 2 on a usage error. Docs: README.md, "Manifest" and "Differences from Go stretcher".
`;
}

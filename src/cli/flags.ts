import type { LogFormat } from '../shared/log.js';

/** Every flag's value after parsing, defaults applied. Each command reads only the flags it declares. */
export interface FlagValues {
  maxBandwidth?: number; // bytes per second
  timeoutMs: number; // 0 = no limit
  randomDelayMs: number;
  retry: number;
  retryWaitMs: number;
  /** Replaces rsync's `-v`; empty drops it. */
  rsyncVerbose: string;
  stateDir: string;
  logFormat: LogFormat;
  maxUnpackBytes: number;
  maxUnpackEntries: number;
  lockTimeoutMs: number;
  /** Each hook command's limit; 0: none. The manifest's command_timeout wins. */
  commandTimeoutMs: number;
  /** PEM files (or, from STRETCHER_VERIFY_KEY, PEM text) of Ed25519 public keys. */
  verifyKeys: string[];
  json: boolean;
  dest?: string;
  force: boolean;
  /** rollback: switch only, without the target release's post and success commands. */
  noHooks: boolean;
  /** status: print the last deploy's whole log. */
  log: boolean;
  releasesDir?: string;
  to?: string;
  intervalMs: number;
  /** Undefined: a tenth of the interval. */
  jitterMs?: number;
  /** rollout, fleet: the Serf agent's RPC address, and `key=regexp` member filters. */
  rpcAddr: string;
  tags: string[];
  /** rollout: hosts deployed one at a time first, then batches of this many in parallel. */
  canary: number;
  batch: number;
  /** rollout: stop before the next batch once more hosts than this have failed. */
  maxFailures: number;
  help: boolean;
  version: boolean;
}

export type FlagKey = keyof FlagValues;

type Kind = 'bool' | 'string' | 'list' | 'int' | 'duration' | 'bandwidth' | 'size' | 'logformat';

export interface FlagSpec {
  /** The first name is the one help shows; the others are aliases (Go's spellings, older names). */
  names: string[];
  kind: Kind;
  key: FlagKey;
  help: string;
  valueName?: string;
  /** A duration's floor, in milliseconds: below it is a usage error (a watch polling in a tight loop). */
  minMs?: number;
}

export const FLAGS: readonly FlagSpec[] = [
  { names: ['max-bandwidth', 'max-band-width'], kind: 'bandwidth', key: 'maxBandwidth', valueName: 'RATE', help: 'limit the archive download to RATE bytes/s (10MB = 10,000,000; 10MiB; 1.5k)' },
  { names: ['timeout'], kind: 'duration', key: 'timeoutMs', valueName: 'D', help: 'give up a transfer (the archive; the manifest) after D, retries included. 0: none' },
  { names: ['random-delay'], kind: 'duration', key: 'randomDelayMs', valueName: 'D', help: 'sleep a random time in [0, D) first, to spread a fleet' },
  { names: ['retry'], kind: 'int', key: 'retry', valueName: 'N', help: 'retry failed transfers N times' },
  { names: ['retry-wait'], kind: 'duration', key: 'retryWaitMs', valueName: 'D', help: "wait D between retries (default 3s); a server's Retry-After wins when longer" },
  { names: ['rsync-verbose'], kind: 'string', key: 'rsyncVerbose', valueName: 'FLAG', help: "rsync's verbosity flag (default -v; '' for none, -vv for more)" },
  { names: ['state-dir'], kind: 'string', key: 'stateDir', valueName: 'DIR', help: 'deploy records, handled event IDs, locks (env STRETCHER_STATE_DIR; default /var/lib/stretcher)' },
  { names: ['log-format'], kind: 'logformat', key: 'logFormat', valueName: 'F', help: 'text (default) or json: one JSON object per line on stderr' },
  { names: ['max-unpack-size', 'max-extract-size'], kind: 'size', key: 'maxUnpackBytes', valueName: 'SIZE', help: 'refuse archives that unpack to more than SIZE (default 64GiB)' },
  { names: ['max-unpack-entries', 'max-extract-entries'], kind: 'int', key: 'maxUnpackEntries', valueName: 'N', help: 'refuse archives with more than N entries (default 10000000)' },
  { names: ['lock-timeout'], kind: 'duration', key: 'lockTimeoutMs', valueName: 'D', help: 'wait at most D for another deploy to the same dest (default 10m)' },
  { names: ['command-timeout'], kind: 'duration', key: 'commandTimeoutMs', valueName: 'D', help: "kill a command's process group after D and fail (manifest command_timeout wins). 0: none" },
  { names: ['verify-key'], kind: 'list', key: 'verifyKeys', valueName: 'FILE', help: 'accept only manifests signed with this Ed25519 public key (repeatable; env STRETCHER_VERIFY_KEY)' },
  { names: ['force'], kind: 'bool', key: 'force', help: 'release strategy: redeploy and re-run hooks even if the checksum is already current' },
  { names: ['json'], kind: 'bool', key: 'json', help: 'print JSON' },
  { names: ['log'], kind: 'bool', key: 'log', help: "print the whole log of --dest's last deploy" },
  { names: ['no-hooks'], kind: 'bool', key: 'noHooks', help: "switch only: skip the release's recorded post and success commands" },
  { names: ['dest'], kind: 'string', key: 'dest', valueName: 'PATH', help: 'the dest (for the release strategy, the symlink)' },
  { names: ['releases-dir'], kind: 'string', key: 'releasesDir', valueName: 'DIR', help: 'where releases live (default: releases/ beside dest)' },
  { names: ['to'], kind: 'string', key: 'to', valueName: 'ID', help: 'the release to switch to (default: the previous one)' },
  { names: ['interval'], kind: 'duration', key: 'intervalMs', valueName: 'D', minMs: 1000, help: 'poll the manifest every D (default 60s; at least 1s)' },
  { names: ['jitter'], kind: 'duration', key: 'jitterMs', valueName: 'D', help: 'add a random delay in [0, D) to each poll (default: a tenth of the interval)' },
  { names: ['rpc-addr'], kind: 'string', key: 'rpcAddr', valueName: 'ADDR', help: "the Serf agent's RPC address (env SERF_RPC_ADDR; default 127.0.0.1:7373)" },
  { names: ['tag'], kind: 'list', key: 'tags', valueName: 'KEY=REGEXP', help: "only members whose tag KEY matches REGEXP, anchored, as serf's -tag (repeatable)" },
  { names: ['canary'], kind: 'int', key: 'canary', valueName: 'N', help: 'deploy the first N hosts one at a time (default 1)' },
  { names: ['batch'], kind: 'int', key: 'batch', valueName: 'N', help: 'then deploy N hosts at a time, in parallel (default 1)' },
  { names: ['max-failures'], kind: 'int', key: 'maxFailures', valueName: 'N', help: 'stop before the next batch once more than N hosts failed (default 0)' },
  { names: ['v', 'version'], kind: 'bool', key: 'version', help: 'print the version and exit' },
  { names: ['h', 'help'], kind: 'bool', key: 'help', help: "print help (a command's own with COMMAND --help) and exit" },
];

export const FLAG_BY_KEY = new Map(FLAGS.map((f) => [f.key, f] as const));

export function defaultValues(env: NodeJS.ProcessEnv): FlagValues {
  return {
    timeoutMs: 0,
    randomDelayMs: 0,
    retry: 0,
    retryWaitMs: 3000,
    rsyncVerbose: '-v',
    stateDir: env.STRETCHER_STATE_DIR || '/var/lib/stretcher',
    logFormat: 'text',
    maxUnpackBytes: 64 * 1024 ** 3,
    maxUnpackEntries: 10_000_000,
    lockTimeoutMs: 10 * 60_000,
    commandTimeoutMs: 0,
    verifyKeys: env.STRETCHER_VERIFY_KEY ? [env.STRETCHER_VERIFY_KEY] : [],
    json: false,
    force: false,
    noHooks: false,
    log: false,
    intervalMs: 60_000,
    rpcAddr: env.SERF_RPC_ADDR || '127.0.0.1:7373',
    tags: [],
    canary: 1,
    batch: 1,
    maxFailures: 0,
    help: false,
    version: false,
  };
}

/** What a command is run with: its flags' values, its operands, and how the flags were spelled. */
export interface Invocation {
  values: FlagValues;
  operands: string[];
  /** How each flag given was spelled (`--max-extract-size`), for messages that name it back. */
  spelled: Partial<Record<FlagKey, string>>;
}

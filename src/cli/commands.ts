import type { CommandName, CommandTable } from './command.js';
import type { FlagKey } from './flags.js';

export type { CommandName } from './command.js';

/** The flags of every deploy, in Go stretcher's spellings where it had them. */
const DEPLOY_FLAGS: readonly FlagKey[] = [
  'maxBandwidth',
  'timeoutMs',
  'retry',
  'retryWaitMs',
  'rsyncVerbose',
  'stateDir',
  'logFormat',
  'maxUnpackBytes',
  'maxUnpackEntries',
  'lockTimeoutMs',
  'commandTimeoutMs',
  'verifyKeys',
  'force',
];

/**
 * The subcommands. Without one, stretcher deploys the manifest URL read from stdin (Go stretcher's only
 * mode, as a Consul or Serf handler), with the deploy command's flags.
 */
export const COMMANDS: CommandTable = {
  deploy: {
    operands: 'URL',
    arity: [1, 1],
    summary: 'deploy URL (cron jobs, ssh loops)',
    details: 'Deploys the manifest at URL, as a deploy from stdin would. Without a command, the URL is read from stdin.',
    flags: [...DEPLOY_FLAGS, 'randomDelayMs'],
    run: async (inv, env) => (await import('./deploy.js')).deployCommand(inv, env),
  },
  watch: {
    operands: 'URL',
    arity: [1, 1],
    summary: 'poll URL, deploy whenever it changes',
    details: 'Polls the manifest with conditional requests and deploys it whenever its content changes; SIGTERM stops it (exit 0).',
    flags: [...DEPLOY_FLAGS, 'intervalMs', 'jitterMs'],
    run: async (inv, env) => (await import('./watch.js')).watchCommand(inv, env),
  },
  validate: {
    operands: 'MANIFEST...',
    arity: [1, Infinity],
    summary: 'check manifests, deploy nothing',
    details: 'Checks templates, YAML, schema, checksums and dest rules; prints one line per problem. Exit 0 only when all are valid.',
    flags: ['logFormat', 'verifyKeys'],
    run: async (inv, env) => (await import('./validate.js')).validateCommand(inv, env),
  },
  status: {
    operands: '',
    arity: [0, 0],
    summary: 'the last deploy of each dest',
    details: 'Prints the last deploy of each dest (or of --dest) from the state directory.',
    flags: ['json', 'dest', 'log', 'stateDir'],
    run: async (inv, env) => (await import('./status.js')).statusCommand(inv, env),
  },
  releases: {
    operands: '',
    arity: [0, 0],
    summary: 'list the releases of a dest',
    details: 'Lists the releases of --dest, the current and previous ones marked.',
    flags: ['dest', 'json', 'releasesDir'],
    required: ['dest'],
    run: async (inv) => (await import('./releases.js')).releasesCommand(inv),
  },
  rollback: {
    operands: '',
    arity: [0, 0],
    summary: 'switch dest back to an earlier release',
    details:
      "Switches --dest to the release that was live before the current one, or to --to ID, under the same lock as deploys; then runs the target release's recorded post and success commands (STRETCHER_ROLLBACK=1).",
    flags: ['dest', 'to', 'noHooks', 'commandTimeoutMs', 'releasesDir', 'lockTimeoutMs', 'stateDir', 'logFormat'],
    required: ['dest'],
    run: async (inv, env) => (await import('./rollback.js')).rollbackCommand(inv, env),
  },
  rollout: {
    operands: 'URL',
    arity: [1, 1],
    summary: 'deploy URL across a Serf cluster, host by host',
    details:
      "Asks the Serf cluster's alive members (--tag filters), in node-name order, to deploy URL through stretcher-deploy queries: --canary hosts one at a time, then --batch hosts in parallel, stopping before the next batch once more than --max-failures hosts failed or gave no answer within --timeout. A line per host and a summary; --json prints one object. Exit 0 only when every host succeeded.",
    flags: ['rpcAddr', 'tags', 'canary', 'batch', 'maxFailures', 'timeoutMs', 'json'],
    flagHelp: { timeoutMs: "one host's deploy may take D before it counts as failed (the query's timeout; default 10m)" },
    run: async (inv) => (await import('./rollout.js')).rolloutCommand(inv),
  },
  fleet: {
    operands: '',
    arity: [0, 0],
    summary: 'what each Serf member last deployed',
    details:
      "Asks the Serf cluster's members (--tag filters) for their stretcher-status and prints each one's last deploy of each dest: node, dest, result, checksum, release, time. A member that does not answer is shown as such (exit 1).",
    flags: ['rpcAddr', 'tags', 'timeoutMs', 'json'],
    flagHelp: { timeoutMs: 'wait D for the answers (default 5s)' },
    run: async (inv) => (await import('./fleet.js')).fleetCommand(inv),
  },
  help: {
    operands: '[COMMAND]',
    arity: [0, 1],
    summary: "print the help, or a command's",
    details: 'Prints the help of COMMAND, or the general help.',
    flags: [],
    run: async (inv) => (await import('./help.js')).helpCommand(inv, COMMANDS),
  },
};

export const COMMAND_NAMES = Object.keys(COMMANDS) as CommandName[];

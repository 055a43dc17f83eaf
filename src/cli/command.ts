import type { FlagKey, Invocation } from './flags.js';

/** One subcommand: what it takes and where its code is (loaded only when it runs). */
export interface Command {
  /** Its operands, as usage shows them ("URL", "MANIFEST..."). */
  operands: string;
  /** How many operands it takes, at least and at most. */
  arity: readonly [number, number];
  summary: string;
  /** What `stretcher help COMMAND` adds below the usage line. */
  details: string;
  flags: readonly FlagKey[];
  /** What a shared flag means for this command, when it differs from its general help (--timeout). */
  flagHelp?: Partial<Record<FlagKey, string>>;
  /** Flags without which it cannot run (`releases` needs --dest). */
  required?: readonly FlagKey[];
  run(invocation: Invocation, env: NodeJS.ProcessEnv): Promise<number>;
}

export type CommandName = 'deploy' | 'watch' | 'validate' | 'status' | 'releases' | 'rollback' | 'rollout' | 'fleet' | 'help';

export type CommandTable = Readonly<Record<CommandName, Command>>;

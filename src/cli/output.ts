import { Log } from '../shared/log.js';
import { Redactor } from '../shared/redact.js';
import type { FlagValues } from './flags.js';

/** The log of a command that works (deploy, watch, rollback): on stderr, scrubbed of the environment's secrets. */
export function commandLog(values: Pick<FlagValues, 'logFormat'>, env: NodeJS.ProcessEnv): Log {
  return new Log(values.logFormat, process.stderr, () => new Date(), Redactor.fromEnv(env));
}

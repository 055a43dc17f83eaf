#!/usr/bin/env node
import { errorMessage, UsageError } from '../shared/errors.js';
import { closest } from '../shared/suggest.js';
import { VERSION } from '../shared/version.js';
import { parseArgs } from './args.js';
import { COMMAND_NAMES, COMMANDS } from './commands.js';
import { usageError } from './exit.js';
import type { Invocation } from './flags.js';
import { commandHelp, generalHelp } from './help.js';

/**
 * argv to exit status; the only module that exits. Kept small: --version and --help must not load the
 * deploy code, so each command's module is loaded only when it runs.
 */
async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(argv, env);
  } catch (err) {
    return usageError(errorMessage(err), err instanceof UsageError ? err.command : undefined);
  }
  const { command, operands, spelled, ...values } = parsed;
  if (values.version) {
    process.stdout.write(`stretcher version ${VERSION} (node ${process.version})\n`);
    return 0;
  }
  if (values.help) {
    process.stdout.write(command && command !== 'help' ? commandHelp(COMMANDS, command) : generalHelp(COMMANDS));
    return 0;
  }
  const invocation: Invocation = { values, operands, spelled };
  if (command === undefined) {
    if (operands.length) {
      const hint = closest(operands[0] as string, COMMAND_NAMES);
      return usageError(`unknown command ${JSON.stringify(operands[0])}${hint ? ` (did you mean ${hint}?)` : ''}; a deploy from stdin takes no operands`);
    }
    return (await import('./deploy.js')).stdinCommand(invocation, env);
  }
  const spec = COMMANDS[command];
  const [min, max] = spec.arity;
  if (operands.length < min || operands.length > max) {
    const wanted =
      min === max
        ? min === 0
          ? 'no operands'
          : `exactly ${min} operand${min > 1 ? 's' : ''} (${spec.operands})`
        : max === Infinity
          ? `at least ${min} (${spec.operands})`
          : `at most ${max} (${spec.operands})`;
    return usageError(`${command} takes ${wanted}`, command);
  }
  for (const key of spec.required ?? []) {
    if (values[key] === undefined) return usageError(`${command} needs --${key === 'dest' ? 'dest PATH' : key}`, command);
  }
  return spec.run(invocation, env);
}

main(process.argv.slice(2), process.env).then(
  (code) => {
    process.exitCode = code;
    // Let stdout/stderr flush, but do not wait for stray handles (an SDK keep-alive socket).
    setImmediate(() => process.exit(code));
  },
  (err: unknown) => {
    process.stderr.write(`stretcher: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(70);
  },
);

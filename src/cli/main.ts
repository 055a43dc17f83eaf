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

/**
 * Resolves once everything written to the stream so far has reached its reader, or after maxMs. Node
 * writes to a pipe asynchronously, so exiting at once drops whatever the agent reading our stderr has not
 * taken yet (all but the first 64 KiB of a chatty deploy's log, when the reader is slow). The bound keeps a
 * reader that never reads from holding the process forever.
 */
function flushed(stream: NodeJS.WriteStream, maxMs: number): Promise<void> {
  if (stream.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, maxMs);
    timer.unref();
    stream.write('', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const FLUSH_MS = 30_000;

main(process.argv.slice(2), process.env).then(
  async (code) => {
    process.exitCode = code;
    // Do not wait for stray handles (an SDK keep-alive socket); do wait for our own output.
    await Promise.all([flushed(process.stdout, FLUSH_MS), flushed(process.stderr, FLUSH_MS)]);
    process.exit(code);
  },
  async (err: unknown) => {
    process.stderr.write(`stretcher: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    await flushed(process.stderr, FLUSH_MS);
    process.exit(70);
  },
);

#!/usr/bin/env node
import { errorMessage } from '../shared/errors.js';
import { parseArgs, usage, type Options } from './flags.js';
import { VERSION } from '../shared/version.js';

/** argv to exit status; the only module that exits. Kept small: --version must not load the deploy code. */
async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let opts: Options;
  try {
    opts = parseArgs(argv, env);
  } catch (err) {
    process.stderr.write(`stretcher: ${errorMessage(err)} (see stretcher --help)\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(usage());
    return 0;
  }
  if (opts.version) {
    process.stdout.write(`stretcher version ${VERSION} (node ${process.version})\n`);
    return 0;
  }
  const { dispatch } = await import('./dispatch.js');
  return dispatch(opts, env);
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

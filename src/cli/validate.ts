import path from 'node:path';
import { errorMessage } from '../shared/errors.js';
import { Log } from '../shared/log.js';
import { ManifestError } from '../manifest/errors.js';
import { loadManifest } from '../manifest/load.js';
import { parseSourceUrl } from '../transfer/sources/index.js';
import { USER_AGENT } from '../shared/version.js';
import type { Invocation } from './flags.js';

/**
 * `stretcher validate MANIFEST...`: the checks a deploy makes before it downloads anything, for CI
 * pipelines that publish manifests. Prints each problem with its line and key path; exit 0 only if all
 * are valid.
 */
export async function validateCommand({ values, operands }: Invocation, env: NodeJS.ProcessEnv): Promise<number> {
  const log = new Log(values.logFormat);
  let failed = 0;
  for (const target of operands) {
    // The same loading as a deploy's (fetch, binary check, src resolved against the final URL): what
    // validate accepts, a deploy accepts. A plain path is a file.
    const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(target);
    try {
      const { warnings } = await loadManifest(parseSourceUrl(isUrl ? target : path.resolve(target)), {
        retry: 0,
        retryWaitMs: 0,
        timeoutMs: 30_000,
        stallMs: 30_000,
        signal: new AbortController().signal,
        log,
        userAgent: USER_AGENT,
        env,
      });
      for (const w of warnings) process.stdout.write(`${target}: warning: ${w}\n`);
      process.stdout.write(`${target}: ok\n`);
    } catch (err) {
      failed++;
      const problems = err instanceof ManifestError ? err.problems : [errorMessage(err)];
      for (const p of problems) process.stdout.write(`${target}: ${p}\n`);
    }
  }
  return failed ? 1 : 0;
}

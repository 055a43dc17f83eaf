import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fetchBytes } from './download.js';
import { errorMessage } from './errors.js';
import type { Log } from './log.js';
import { ManifestError } from './manifest/errors.js';
import { manifestFromText, MAX_MANIFEST_BYTES } from './manifest/load.js';
import { parseSourceUrl } from './source/index.js';
import { USER_AGENT } from './version.js';

/**
 * `stretcher validate MANIFEST...`: the checks a deploy makes before it downloads anything, for CI
 * pipelines that publish manifests. Prints each problem with its line and key path; exit 0 only if all
 * are valid.
 */
export async function validateCommand(targets: string[], env: NodeJS.ProcessEnv, log: Log): Promise<number> {
  let failed = 0;
  for (const target of targets) {
    const isUrl = /^[a-z][a-z0-9+.-]*:\/\//i.test(target);
    try {
      const url = isUrl ? parseSourceUrl(target).toString() : `file://${path.resolve(target)}`;
      const text = isUrl
        ? (
            await fetchBytes(new URL(url), MAX_MANIFEST_BYTES, 'manifest', {
              retry: 0,
              retryWaitMs: 0,
              timeoutMs: 30_000,
              stallMs: 30_000,
              signal: new AbortController().signal,
              log,
              userAgent: USER_AGENT,
              env,
            })
          ).bytes.toString('utf8')
        : await readFile(target, 'utf8');
      const { warnings } = manifestFromText(text, url, env);
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

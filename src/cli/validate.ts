import { describeHealth } from '../hooks/health.js';
import { checkBindingShape, checkGitPinned } from '../manifest/binding.js';
import { ManifestError } from '../manifest/errors.js';
import { loadManifest } from '../manifest/load.js';
import { loadVerifyKeys } from '../manifest/signature.js';
import { errorMessage } from '../shared/errors.js';
import { Log } from '../shared/log.js';
import { Redactor } from '../shared/redact.js';
import { USER_AGENT } from '../shared/version.js';
import { operandUrl } from './operand.js';
import type { Invocation } from './flags.js';

/**
 * `stretcher validate MANIFEST...`: the checks a deploy makes before it downloads anything, for CI
 * pipelines that publish manifests. Prints each problem with its line and key path; exit 0 only if all
 * are valid. With --verify-key, the signature is checked too, and that the manifest names its
 * manifest_url and serial and has not expired.
 */
export async function validateCommand({ values, operands }: Invocation, env: NodeJS.ProcessEnv): Promise<number> {
  const redactor = Redactor.fromEnv(env);
  const log = new Log(values.logFormat, process.stderr, () => new Date(), redactor);
  const say = (text: string): boolean => process.stdout.write(`${redactor.text(text)}\n`);
  let failed = 0;
  let keys: Awaited<ReturnType<typeof loadVerifyKeys>>;
  try {
    keys = await loadVerifyKeys(values.verifyKeys);
  } catch (err) {
    log.error(errorMessage(err));
    return 1;
  }
  for (const target of operands) {
    // The same loading as a deploy's (fetch, binary check, src resolved against the final URL): what
    // validate accepts, a deploy accepts.
    try {
      const { manifest, warnings } = await loadManifest(
        operandUrl(target),
        { retry: 0, retryWaitMs: 0, timeoutMs: 30_000, stallMs: 30_000, signal: new AbortController().signal, log, userAgent: USER_AGENT, env },
        keys,
      );
      if (keys.length) {
        checkBindingShape(manifest);
        checkGitPinned(manifest);
      }
      for (const w of warnings) say(`${target}: warning: ${w}`);
      say(`${target}: ok`);
      if (manifest.health) say(`${target}: health: ${describeHealth(manifest.health)}`);
    } catch (err) {
      failed++;
      const problems = err instanceof ManifestError ? err.problems : [errorMessage(err)];
      for (const p of problems) say(`${target}: ${p}`);
    }
  }
  return failed ? 1 : 0;
}

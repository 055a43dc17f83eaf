import { StretcherError } from '../shared/errors.js';

/**
 * A manifest that cannot be used. `problems` lists every issue found (validate prints one per line);
 * `failureCommands` is set when the YAML parsed far enough to name valid failure commands, so the
 * operator's alerting still fires for a broken manifest.
 */
export class ManifestError extends StretcherError {
  override name = 'ManifestError';
  constructor(
    readonly where: string,
    readonly problems: string[],
    readonly failureCommands?: string[],
    /** The dest it names, when that much of it is valid: the failure is recorded there (cli/deploy.ts). */
    readonly dest?: string,
  ) {
    super('MANIFEST_INVALID', `invalid manifest ${where}: ${problems.join('; ')}`);
  }
}

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Location } from '../shared/location.js';
import { parseSourceUrl } from '../transfer/sources/index.js';

/**
 * A manifest named on the command line (deploy, watch, validate): a URL, or a path, which may be
 * relative to the directory stretcher is run in. All three commands read it the same way.
 */
export function operandUrl(operand: string): Location {
  const isUrl = /^[a-z][a-z0-9+.-]*:/i.test(operand) && !/^[a-z]:[\\/]/i.test(operand);
  return parseSourceUrl(isUrl ? operand : pathToFileURL(path.resolve(operand)).href);
}

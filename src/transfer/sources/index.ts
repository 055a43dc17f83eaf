import { StretcherError } from '../../shared/errors.js';
import { Location } from '../../shared/location.js';
import { openFile } from './file.js';
import type { Opener, OpenOptions, OpenedSource } from './types.js';

export type { OpenOptions, OpenedSource, Validators } from './types.js';

/**
 * Every scheme stretcher fetches from, and the module that opens it: the one list (manifest validation
 * reads it too). Adding a scheme is a file in this folder and a line here. Modules load on first use: got
 * costs about 130 ms and the cloud SDKs far more, so a deploy pays only for the schemes it uses.
 */
const OPENERS: Record<string, () => Opener | Promise<Opener>> = {
  'file:': () => openFile,
  'http:': async () => (await import('./http.js')).openHttp,
  'https:': async () => (await import('./http.js')).openHttp,
  's3:': async () => (await import('./s3.js')).openS3,
  'gs:': async () => (await import('./gs.js')).openGs,
};

/** The schemes, as URL.protocol spells them ("s3:"). */
export const SCHEMES: readonly string[] = Object.keys(OPENERS);

/** "s3, http, https or file": for messages. */
export function schemeList(): string {
  const names = SCHEMES.map((s) => s.slice(0, -1));
  return `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}

/** Why stretcher cannot fetch from `location`, or undefined when it can. */
export function unsupportedScheme(location: Location): string | undefined {
  if (location.protocol in OPENERS) return undefined;
  return `URL scheme ${JSON.stringify(location.protocol.slice(0, -1))} is not supported (use ${schemeList()})`;
}

/** A URL the user gave (an absolute path is a file), refused early when no source can open it. */
export function parseSourceUrl(text: string): Location {
  let location: Location;
  try {
    location = Location.parse(text);
  } catch (err) {
    throw new StretcherError('URL_INVALID', `${(err as Error).message} (expected ${SCHEMES.map((s) => `${s}//`).join(', ')})`);
  }
  const why = unsupportedScheme(location);
  if (why) throw new StretcherError('URL_INVALID', why);
  return location;
}

export async function openSource(location: Location, opts: OpenOptions): Promise<OpenedSource> {
  const load = OPENERS[location.protocol];
  const why = unsupportedScheme(location);
  if (!load || why) throw new StretcherError('URL_INVALID', why ?? 'unsupported');
  return (await load())(location, opts);
}

import { readFileSync } from 'node:fs';

/** Set by scripts/bundle.mjs from package.json, so that the built program reads no file to know it. */
declare const STRETCHER_VERSION: string | undefined;

/** From package.json, so that `npm version` is the only place a release number is written. */
export const VERSION: string = typeof STRETCHER_VERSION === 'string' ? STRETCHER_VERSION : sourceVersion();

export const USER_AGENT = `stretcher/${VERSION}`;

/** Run from src/ (the unit tests, through tsx): package.json is two levels up. */
function sourceVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

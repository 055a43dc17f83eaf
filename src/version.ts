import { readFileSync } from 'node:fs';

/** From package.json, so that `npm version` is the only place a release number is written. */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const USER_AGENT = `stretcher/${VERSION}`;

import { pathToFileURL } from 'node:url';
import { StretcherError } from '../../shared/errors.js';
import { openFile } from './file.js';
import type { Opener, OpenOptions, OpenedSource } from './types.js';

export type { OpenOptions, OpenedSource, Validators } from './types.js';

const OPENERS: Record<string, Opener | (() => Promise<Opener>)> = {
  'file:': openFile,
  // Loaded on first use: got costs about 130 ms and the AWS SDK far more; a deploy pays only for the
  // schemes it uses.
  'http:': async () => (await import('./http.js')).openHttp,
  'https:': async () => (await import('./http.js')).openHttp,
  's3:': async () => (await import('./s3.js')).openS3,
};

/**
 * A URL as the user wrote it. Absolute paths are accepted as file URLs (Go stretcher rejected them), which
 * keeps `echo /srv/manifests/app.yml | stretcher` working.
 */
export function parseSourceUrl(text: string): URL {
  if (text.startsWith('/')) return pathToFileURL(text);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new StretcherError(`${JSON.stringify(text)} is not a URL (expected s3://, http(s):// or file://)`);
  }
  if (!(url.protocol in OPENERS)) {
    throw new StretcherError(`URL scheme ${JSON.stringify(url.protocol.slice(0, -1))} is not supported (use s3, http, https or file)`);
  }
  return url;
}

export async function openSource(url: URL, opts: OpenOptions): Promise<OpenedSource> {
  const entry = OPENERS[url.protocol];
  if (!entry) throw new StretcherError(`URL scheme ${JSON.stringify(url.protocol.slice(0, -1))} is not supported`);
  const opener = entry === openFile ? openFile : await (entry as () => Promise<Opener>)();
  return opener(url, opts);
}

import { Location } from '../../shared/location.js';
import { StretcherError } from '../../shared/errors.js';
import { TransferError } from '../failure.js';
import { googleAccessToken } from './google-auth.js';
import { openHttp } from './http.js';
import type { Opener } from './types.js';

/**
 * `gs://bucket/object`: Google Cloud Storage's JSON API, read as a stream over HTTPS (got, as http://
 * sources are, so redirects, proxies, stalls and retries behave the same). Credentials are Google's
 * Application Default Credentials; with STORAGE_EMULATOR_HOST set, requests go to that emulator without
 * credentials, as Google's own clients do.
 */
export const openGs: Opener = async (location, opts) => {
  const bucket = location.url.hostname;
  const object = decodeURIComponent(location.url.pathname.replace(/^\//, ''));
  const shown = `gs://${bucket}/${object}`;
  if (!bucket || !object) throw new StretcherError('URL_INVALID', `${location} is not a gs://bucket/object URL`);
  const emulator = opts.env.STORAGE_EMULATOR_HOST;
  const base = emulator ? (/^https?:\/\//.test(emulator) ? emulator : `http://${emulator}`).replace(/\/+$/, '') : 'https://storage.googleapis.com';
  const headers: Record<string, string> = emulator ? {} : { authorization: `Bearer ${await googleAccessToken(opts.env, opts.signal)}` };
  const objectUrl = `${base}/storage/v1/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(object)}`;
  const { conditional, ...plain } = opts;
  try {
    if (conditional?.etag) {
      // The object's metadata says whether it changed (watch mode polls this way): its generation.
      const meta = await openHttp(Location.parse(objectUrl), { ...plain, headers });
      const chunks: Buffer[] = [];
      for await (const chunk of meta.body) chunks.push(chunk as Buffer);
      const generation = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { generation?: string }).generation;
      if (generation && `gen:${generation}` === conditional.etag) return { body: meta.body, notModified: true, validators: { etag: conditional.etag } };
    }
    const opened = await openHttp(Location.parse(`${objectUrl}?alt=media`), { ...plain, headers });
    const generation = opened.headers?.['x-goog-generation'];
    return { ...opened, finalUrl: location.href, validators: typeof generation === 'string' ? { etag: `gen:${generation}` } : {} };
  } catch (err) {
    throw describe(err, shown);
  }
};

function describe(err: unknown, shown: string): unknown {
  if (!(err instanceof TransferError) || err.facts.status === undefined) return err;
  const { status } = err.facts;
  const what =
    status === 404
      ? 'no such bucket or object'
      : status === 403
        ? "access denied (check the credentials' permissions for this bucket)"
        : status === 401
          ? 'not authorized (the credentials were refused)'
          : `HTTP ${status}`;
  return new TransferError(`${shown}: ${what}`, err.facts);
}

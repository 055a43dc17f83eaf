import type { IncomingMessage } from 'node:http';
import { request as httpRequest, type ClientRequest, type RequestOptions } from 'node:http';
import { Readable } from 'node:stream';
import got, { type Request } from 'got';
import type { Location } from '../../shared/location.js';
import { TransferError } from '../failure.js';
import { proxyFor } from './proxy.js';
import type { Opener } from './types.js';

/**
 * got follows redirects, turns `user:pass@` into Basic auth (and drops it when a redirect leaves the host),
 * but its stream mode never retries: retrying is download.ts's job, over the whole transfer. The status is
 * checked here, unlike Go stretcher which hashed (or YAML-parsed) whatever error page came back.
 * Responses are not decompressed: the checksum is over the bytes as stored.
 */
export const openHttp: Opener = async (location, { signal, userAgent, conditional, env, headers }) => {
  const url = location.url;
  const proxy = proxyFor(url, env);
  // hpagent is loaded only through a proxy: importing it took ~10 ms of every HTTP deploy's start-up.
  const tunnel = proxy && url.protocol === 'https:' ? new (await import('hpagent')).HttpsProxyAgent({ proxy }) : undefined;
  const stream: Request = got.stream(url, {
    // As Go's transport does: https through a CONNECT tunnel, plain http as absolute-form requests to the
    // proxy (many proxies allow CONNECT to port 443 only).
    ...(tunnel ? { agent: { https: tunnel } } : {}),
    ...(proxy && url.protocol === 'http:' ? { request: absoluteFormRequest(proxy) } : {}),
    headers: {
      ...headers,
      'user-agent': userAgent,
      ...(conditional?.etag ? { 'if-none-match': conditional.etag } : {}),
      ...(conditional?.lastModified ? { 'if-modified-since': conditional.lastModified } : {}),
    },
    decompress: false,
    throwHttpErrors: false,
    retry: { limit: 0 },
    timeout: { connect: 30_000, secureConnect: 30_000, response: 60_000 },
    signal,
  });
  const response = await new Promise<IncomingMessage>((resolve, reject) => {
    stream.once('response', resolve);
    stream.once('error', reject);
  }).catch((err: unknown) => {
    stream.destroy();
    throw requestFailure(err, location, signal);
  });
  const status = response.statusCode ?? 0;
  const etag = response.headers.etag;
  const lastModified = response.headers['last-modified'];
  const validators = { ...(etag ? { etag } : {}), ...(lastModified ? { lastModified } : {}) };
  if (status === 304 && conditional) {
    stream.destroy();
    return { body: Readable.from([]), notModified: true, validators: { ...conditional, ...validators } };
  }
  if (status < 200 || status > 299) {
    stream.destroy();
    const retryAfterMs = retryAfter(response.headers['retry-after']);
    throw new TransferError(`HTTP ${status}${response.statusMessage ? ` ${response.statusMessage}` : ''} from ${location}`, {
      stage: 'response',
      status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  const length = Number(response.headers['content-length']);
  const finalUrl = (response as IncomingMessage & { url?: string }).url;
  return {
    body: stream,
    ...(Number.isFinite(length) && response.headers['content-length'] !== undefined ? { size: length } : {}),
    ...(finalUrl ? { finalUrl } : {}),
    validators,
    headers: response.headers,
  };
};

function requestFailure(err: unknown, location: Location, signal: AbortSignal): Error {
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason : new TransferError('aborted', { stage: 'connect' });
  const errno = (err as { code?: string }).code;
  const facts = { stage: 'connect' as const, ...(errno ? { errno } : {}) };
  if (errno === 'ERR_TOO_MANY_REDIRECTS') return new TransferError(`too many redirects fetching ${location}`, facts);
  if (errno === 'ENOTFOUND') return new TransferError(`cannot fetch ${location}: host not found`, facts);
  return new TransferError(`cannot fetch ${location}`, facts, { cause: err });
}

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
function retryAfter(value: string | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const when = Date.parse(value);
  return Number.isNaN(when) ? undefined : Math.max(0, when - Date.now());
}

/** An http:// request sent to the proxy with the absolute URL as its target (RFC 9112 absolute-form). */
function absoluteFormRequest(proxy: string): (url: URL, options: RequestOptions, callback?: (res: IncomingMessage) => void) => ClientRequest {
  const via = new URL(proxy);
  return (url, options, callback) => {
    const headers: Record<string, unknown> = { ...options.headers, host: url.host };
    if (via.username) {
      const credentials = `${decodeURIComponent(via.username)}:${decodeURIComponent(via.password)}`;
      headers['proxy-authorization'] = `Basic ${Buffer.from(credentials).toString('base64')}`;
    }
    const target = new URL(url.toString());
    target.username = '';
    target.password = '';
    return httpRequest(
      {
        host: via.hostname,
        port: Number(via.port) || 80,
        method: options.method,
        path: target.toString(),
        headers: headers as RequestOptions['headers'],
        ...(options.signal ? { signal: options.signal } : {}),
      },
      callback,
    );
  };
}

import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { StretcherError } from '../../shared/errors.js';
import { TransferError } from '../failure.js';
import { proxyFor } from './proxy.js';
import type { Opener, OpenOptions } from './types.js';

let client: S3Client | undefined;

/**
 * The SDK costs a noticeable share of start-up time, so it is imported on the first s3:// URL only.
 * Credentials and region come from the SDK's default chain (env, shared files, profile, web identity,
 * container and instance roles); Go stretcher's users also set AWS_DEFAULT_REGION and AWS_DEFAULT_PROFILE,
 * which the JS SDK ignores, so they are honoured here. AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL select an
 * S3-compatible server (MinIO, Ceph), addressed path-style.
 */
async function s3Client(env: NodeJS.ProcessEnv): Promise<{ client: S3Client; sdk: typeof import('@aws-sdk/client-s3') }> {
  // Node 20 is past its end of life; the SDK would print a warning on every deploy.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const sdk = await import('@aws-sdk/client-s3');
  if (!client) {
    const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
    const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || (endpoint ? 'us-east-1' : undefined);
    const profile = !env.AWS_PROFILE && env.AWS_DEFAULT_PROFILE ? env.AWS_DEFAULT_PROFILE : undefined;
    // Go's SDK honoured HTTPS_PROXY/NO_PROXY; the JS SDK does not unless given an agent.
    const proxy = proxyFor(new URL(endpoint ?? `https://s3.${region ?? 'us-east-1'}.amazonaws.com`), env);
    const requestHandler = proxy ? await proxiedHandler(proxy) : undefined;
    client = new sdk.S3Client({
      ...(requestHandler ? { requestHandler } : {}),
      ...(region ? { region } : {}),
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      ...(profile ? { profile } : {}),
      followRegionRedirects: true,
      // Retries are ours (--retry), so that they cover the body as well as the request.
      maxAttempts: 1,
    });
  }
  return { client, sdk };
}

export const openS3: Opener = async (location, opts: OpenOptions) => {
  const bucket = location.url.hostname;
  const key = decodeURIComponent(location.url.pathname.replace(/^\//, ''));
  const shown = `s3://${bucket}/${key}`;
  if (!bucket || !key) throw new StretcherError('URL_INVALID', `${location} is not an s3://bucket/key URL`);
  const { client: s3, sdk } = await s3Client(opts.env);
  try {
    if (opts.conditional?.etag) {
      // A HEAD is enough to learn that nothing changed (watch mode polls this way).
      const head = await s3.send(new sdk.HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: opts.signal });
      if (head.ETag === opts.conditional.etag) return { body: Readable.from([]), notModified: true, validators: { etag: head.ETag } };
    }
    const out = await s3.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: opts.signal });
    const body = out.Body as Readable | undefined;
    if (!body) throw new TransferError(`${shown}: the response had no body`, { stage: 'response' });
    return { body, ...(out.ContentLength !== undefined ? { size: out.ContentLength } : {}), ...(out.ETag ? { validators: { etag: out.ETag } } : {}) };
  } catch (err) {
    throw describeS3Error(err, shown, bucket, opts.signal);
  }
};

/** The SDK's error names, as the sentence an operator needs. */
const S3_ERRORS: Record<string, (bucket: string) => string> = {
  NoSuchKey: (bucket) => `no such key in bucket ${bucket}`,
  NoSuchBucket: (bucket) => `bucket ${bucket} does not exist`,
  InvalidAccessKeyId: () => 'the AWS access key ID is not recognised by the server (bad credentials)',
  SignatureDoesNotMatch: () => 'the AWS secret key does not match the access key ID (bad credentials)',
  AccessDenied: () => "access denied (check the credentials' permissions for this bucket and key)",
  CredentialsProviderError: () => 'no AWS credentials found (environment, shared credentials file, profile or instance role)',
};

function describeS3Error(err: unknown, shown: string, bucket: string, signal: AbortSignal): Error {
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason : new TransferError('aborted', { stage: 'connect' });
  if (err instanceof StretcherError) return err;
  const e = err as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  // Without a status the request never got an answer: a network failure, retried like any other.
  const facts = status !== undefined ? { stage: 'response' as const, status } : { stage: 'connect' as const, ...(e.code ? { errno: e.code } : {}) };
  const known = e.name ? S3_ERRORS[e.name] : undefined;
  // A missing credential or region is this host's configuration: final, whatever the status.
  if (e.name === 'CredentialsProviderError') return new TransferError(`${shown}: ${(known as (b: string) => string)(bucket)}`, { stage: 'local' });
  if (/region is missing/i.test(e.message ?? '')) return new TransferError(`${shown}: no AWS region configured: set AWS_REGION or AWS_DEFAULT_REGION`, { stage: 'local' });
  if (known) return new TransferError(`${shown}: ${known(bucket)}`, facts);
  if (status === 404) return new TransferError(`${shown}: not found (HTTP 404)`, facts);
  if (status === 403) return new TransferError(`${shown}: access denied (HTTP 403)`, facts);
  return new TransferError(`${shown}: ${e.name ?? 'error'}${status ? ` (HTTP ${status})` : ''}`, facts, { cause: err });
}

/** An SDK request handler whose connections go through `proxy` (loaded only when a proxy is set). */
async function proxiedHandler(proxy: string): Promise<import('@smithy/node-http-handler').NodeHttpHandler> {
  const [{ NodeHttpHandler }, { HttpProxyAgent, HttpsProxyAgent }] = await Promise.all([import('@smithy/node-http-handler'), import('hpagent')]);
  return new NodeHttpHandler({ httpAgent: new HttpProxyAgent({ proxy }), httpsAgent: new HttpsProxyAgent({ proxy }) });
}

import { createSign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import got from 'got';
import { errorMessage } from '../../shared/errors.js';
import { TransferError } from '../failure.js';

/** Read access to objects is all a deploy needs. */
const SCOPE = 'https://www.googleapis.com/auth/devstorage.read_only';
const DEFAULT_TOKEN_URI = 'https://oauth2.googleapis.com/token';

interface Token {
  value: string;
  /** When to stop using it: a minute before Google says it expires. */
  until: number;
}

let cached: Token | undefined;

/**
 * An OAuth access token from Google's Application Default Credentials, found the way Google's own clients
 * (and Go stretcher, through them) find them: the file GOOGLE_APPLICATION_CREDENTIALS names (a service
 * account key or an authorized user), gcloud's application_default_credentials.json, or the metadata
 * server of the Compute Engine, GKE or Cloud Run instance stretcher runs on.
 */
export async function googleAccessToken(env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<string> {
  if (cached && cached.until > Date.now()) return cached.value;
  const file = env.GOOGLE_APPLICATION_CREDENTIALS || (await wellKnownFile(env));
  const token = file ? await fromFile(file, signal) : await fromMetadataServer(env, signal);
  cached = token;
  return token.value;
}

/** gcloud's `auth application-default login` file, if there is one. */
async function wellKnownFile(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const dir = env.CLOUDSDK_CONFIG || path.join(env.HOME || homedir(), '.config', 'gcloud');
  const file = path.join(dir, 'application_default_credentials.json');
  return (await readFile(file).then(
    () => true,
    () => false,
  ))
    ? file
    : undefined;
}

interface CredentialsFile {
  type?: string;
  client_email?: string;
  private_key?: string;
  token_uri?: string;
  client_id?: string;
  client_secret?: string;
  refresh_token?: string;
}

async function fromFile(file: string, signal: AbortSignal): Promise<Token> {
  let creds: CredentialsFile;
  try {
    creds = JSON.parse(await readFile(file, 'utf8')) as CredentialsFile;
  } catch (err) {
    throw new TransferError(`cannot read Google credentials ${file}`, { stage: 'local' }, { cause: err });
  }
  const tokenUri = creds.token_uri || DEFAULT_TOKEN_URI;
  if (creds.type === 'service_account' && creds.client_email && creds.private_key) {
    const assertion = serviceAccountJwt(creds.client_email, creds.private_key, tokenUri);
    return exchange(tokenUri, { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }, signal);
  }
  if (creds.type === 'authorized_user' && creds.client_id && creds.client_secret && creds.refresh_token) {
    return exchange(tokenUri, { grant_type: 'refresh_token', client_id: creds.client_id, client_secret: creds.client_secret, refresh_token: creds.refresh_token }, signal);
  }
  throw new TransferError(`Google credentials ${file} are of type ${JSON.stringify(creds.type ?? '')}; stretcher reads service_account and authorized_user credentials`, { stage: 'local' });
}

/** A service account's signed request for a token (RFC 7523), valid for an hour. */
function serviceAccountJwt(email: string, privateKey: string, audience: string): string {
  const now = Math.floor(Date.now() / 1000);
  const encode = (part: object): string => Buffer.from(JSON.stringify(part)).toString('base64url');
  const unsigned = `${encode({ alg: 'RS256', typ: 'JWT' })}.${encode({ iss: email, scope: SCOPE, aud: audience, iat: now, exp: now + 3600 })}`;
  const signature = createSign('RSA-SHA256').update(unsigned).sign(privateKey).toString('base64url');
  return `${unsigned}.${signature}`;
}

async function exchange(tokenUri: string, form: Record<string, string>, signal: AbortSignal): Promise<Token> {
  return tokenRequest(`the Google token endpoint ${tokenUri}`, () => got.post(tokenUri, { form, signal, retry: { limit: 0 }, timeout: { request: 30_000 }, throwHttpErrors: false }));
}

/** The token of the instance's service account, from the metadata server (GCE_METADATA_HOST overrides its address). */
async function fromMetadataServer(env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<Token> {
  const host = env.GCE_METADATA_HOST || 'metadata.google.internal';
  const url = `http://${host}/computeMetadata/v1/instance/service-accounts/default/token?scopes=${encodeURIComponent(SCOPE)}`;
  return tokenRequest('the metadata server', () => got(url, { headers: { 'metadata-flavor': 'Google' }, signal, retry: { limit: 0 }, timeout: { request: 5_000 }, throwHttpErrors: false }), true);
}

async function tokenRequest(from: string, send: () => Promise<{ statusCode: number; body: string }>, noneFound = false): Promise<Token> {
  let response: { statusCode: number; body: string };
  try {
    response = await send();
  } catch (err) {
    const errno = (err as { code?: string }).code;
    if (noneFound) {
      // Not on Google Cloud, and no credentials file: say what would work.
      throw new TransferError(`no Google credentials found: set GOOGLE_APPLICATION_CREDENTIALS, run gcloud auth application-default login, or run on Google Cloud (${errorMessage(err)})`, {
        stage: 'local',
      });
    }
    throw new TransferError(`cannot get a token from ${from}`, { stage: 'connect', ...(errno ? { errno } : {}) }, { cause: err });
  }
  const body = (() => {
    try {
      return JSON.parse(response.body) as { access_token?: string; expires_in?: number; error?: string; error_description?: string };
    } catch {
      return {};
    }
  })();
  if (response.statusCode < 200 || response.statusCode > 299 || !body.access_token) {
    const why = body.error_description || body.error || `HTTP ${response.statusCode}`;
    throw new TransferError(`${from} refused a token: ${why}`, { stage: 'response', status: response.statusCode });
  }
  return { value: body.access_token, until: Date.now() + Math.max(0, (body.expires_in ?? 3600) - 60) * 1000 };
}

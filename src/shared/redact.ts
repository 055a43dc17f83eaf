/**
 * Credentials must never reach the log, the state files or what hook commands receive: a manifest URL can
 * carry `user:pass@` or a pre-signed query string, and both are as good as a password for their lifetime.
 */

const SECRET_QUERY_KEYS = new Set([
  'x-amz-signature',
  'x-amz-credential',
  'x-amz-security-token',
  'signature',
  'sig',
  'token',
  'access_token',
  'x-goog-signature',
  'x-goog-credential',
  'awsaccesskeyid',
  'password',
  'secret',
]);

export const REDACTED = 'REDACTED';

/** The URL with its password and secret query values replaced; unparseable input is scrubbed as text. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return redactText(url);
  }
  if (parsed.password) parsed.password = REDACTED;
  for (const key of [...parsed.searchParams.keys()]) {
    if (SECRET_QUERY_KEYS.has(key.toLowerCase())) parsed.searchParams.set(key, REDACTED);
  }
  return parsed.toString();
}

const USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]*):[^\s/@]*@/gi;
const QUERY_SECRET = /([?&;])([A-Za-z0-9_.-]+)=([^&\s#"']*)/g;
const AWS_SECRET_ASSIGNMENT = /(aws_secret_access_key|aws_session_token)(\s*[=:]\s*)\S+/gi;

/** Scrubs secrets from free text (error messages from libraries often embed the URL they failed on). */
export function redactText(text: string): string {
  return text
    .replace(USERINFO, `$1:${REDACTED}@`)
    .replace(QUERY_SECRET, (whole, sep: string, key: string) =>
      SECRET_QUERY_KEYS.has(key.toLowerCase()) ? `${sep}${key}=${REDACTED}` : whole,
    )
    .replace(AWS_SECRET_ASSIGNMENT, `$1$2${REDACTED}`);
}

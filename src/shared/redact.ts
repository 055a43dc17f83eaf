/**
 * Credentials must never leave the process in text: not in the log, the state files, the variables hook
 * commands get, or what `status` prints. A URL can carry `user:pass@`, a bare token as its user
 * (`https://TOKEN@host/`) or a pre-signed query string, each as good as a password for its lifetime.
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

/**
 * Schemes whose user name is an account, not a credential (`git@github.com`). Elsewhere a user name
 * without a password is how tokens travel, so it is redacted as a password would be.
 */
const ACCOUNT_USER_SCHEMES = new Set(['ssh:', 'git+ssh:', 'sftp:']);

/** The URL with its credentials and secret query values replaced; unparseable input is scrubbed as text. */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return redactText(url);
  }
  if (parsed.password) parsed.password = REDACTED;
  else if (parsed.username && !ACCOUNT_USER_SCHEMES.has(parsed.protocol)) parsed.username = REDACTED;
  for (const key of [...parsed.searchParams.keys()]) {
    if (SECRET_QUERY_KEYS.has(key.toLowerCase())) parsed.searchParams.set(key, REDACTED);
  }
  return parsed.toString();
}

const USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s/:@]*):[^\s/@]*@/gi;
/** `scheme://TOKEN@host`, where scheme is not one whose user is an account name. */
const BARE_USER = /\b((?![a-z0-9+.-]*ssh:|sftp:)[a-z][a-z0-9+.-]*:\/\/)([^\s/:@]+)@/gi;
const QUERY_SECRET = /([?&;])([A-Za-z0-9_.-]+)=([^&\s#"']*)/g;
const AWS_SECRET_ASSIGNMENT = /(aws_secret_access_key|aws_session_token)(\s*[=:]\s*)\S+/gi;
const AWS_NAME = /aws_s/i;

/** Scrubs URL credentials from free text (error messages from libraries often embed the URL they failed on). */
export function redactText(text: string): string {
  // Every log line passes through here: the checks below skip the expressions that cannot match it.
  let out = text;
  if (out.includes('://')) {
    out = out.replace(USERINFO, `$1:${REDACTED}@`).replace(BARE_USER, (whole, scheme: string, user: string) => (user === REDACTED ? whole : `${scheme}${REDACTED}@`));
  }
  if (out.includes('=')) out = out.replace(QUERY_SECRET, (whole, sep: string, key: string) => (SECRET_QUERY_KEYS.has(key.toLowerCase()) ? `${sep}${key}=${REDACTED}` : whole));
  if (AWS_NAME.test(out)) out = out.replace(AWS_SECRET_ASSIGNMENT, `$1$2${REDACTED}`);
  return out;
}

const SECRET_NAME = /SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE_KEY|CREDENTIAL/i;
/** Shorter values would scrub ordinary words out of every line. */
const MIN_SECRET_LENGTH = 6;

/**
 * The one scrubber for text on its way out of the process: URL credentials, and the values of secret
 * variables (AWS_SECRET_ACCESS_KEY, a DEPLOY_TOKEN a template spliced into a command), wherever they
 * appear. The log, the state records, hook variables and every printed error go through it.
 */
export class Redactor {
  private readonly secrets: string[] = [];

  /** The values of `env`'s variables that are secrets by their name (AWS_SESSION_TOKEN, *PASSWORD*...). */
  static fromEnv(env: NodeJS.ProcessEnv): Redactor {
    const r = new Redactor();
    r.add(
      Object.entries(env)
        .filter(([k, v]) => SECRET_NAME.test(k) && typeof v === 'string')
        .map(([, v]) => v as string),
    );
    return r;
  }

  add(values: readonly string[]): void {
    for (const v of values) if (v.length >= MIN_SECRET_LENGTH && !this.secrets.includes(v)) this.secrets.push(v);
    // Longest first: a secret that contains another is replaced whole.
    this.secrets.sort((a, b) => b.length - a.length);
  }

  text(text: string): string {
    let out = redactText(text);
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  }
}

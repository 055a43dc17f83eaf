import { createHash } from 'node:crypto';
import { StretcherError } from '../../shared/errors.js';
import { redactUrl } from '../../shared/redact.js';

/**
 * A git repository as a manifest's `src` names it, in repo-deploy's spelling or as a URL:
 *
 *   user@host:org/app.git/path#branch           (scp-like, as repo-deploy wrote it; ssh)
 *   git+https://host/org/app.git//path#ref      (also git+ssh://, git+file://, git://)
 *
 * `path` is a directory inside the repository ('' for its root); `ref` a branch, tag or commit id, or
 * undefined for the remote's HEAD branch. `remote` is what git is given (credentials included); the
 * display form has them redacted, as a Location's does.
 */
export class GitSource {
  readonly kind = 'git';
  readonly shown: string;

  constructor(
    /** The repository as git is given it: `https://host/org/app.git`, `user@host:org/app.git`, ... */
    readonly remote: string,
    /** git's name for the transport: `https`, `ssh`, `file`, `git`; the one protocol.<name>.allow lets through. */
    readonly transport: 'https' | 'http' | 'ssh' | 'file' | 'git',
    readonly path: string,
    readonly ref: string | undefined,
    written: string,
  ) {
    this.shown = redactUrl(written);
  }

  /** The cache's name for the repository: a hash, so neither a credential nor a path lands in a file name. */
  get key(): string {
    return createHash('sha256').update(this.remote).digest('hex').slice(0, 32);
  }

  /** The remote in its display form, for messages. */
  get remoteShown(): string {
    return redactUrl(this.remote);
  }

  /** `ref main`, or `the remote's HEAD branch`: for messages. */
  get refShown(): string {
    return this.ref === undefined ? "the remote's HEAD branch" : `ref ${JSON.stringify(this.ref)}`;
  }

  toString(): string {
    return this.shown;
  }

  toJSON(): string {
    return this.shown;
  }
}

/** `git+https:` and friends: the URL forms. */
const URL_FORM = /^(git\+(https|http|ssh|file)|git):\/\//i;
/** repo-deploy's `user@host:path`: a user, a host, a colon, and a path that does not start with `//`. */
const SCP_FORM = /^([A-Za-z0-9._~-]+)@([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?!\/\/)(.+)$/;

/** Whether `text` names a git repository (and so is parsed by parseGitSource, not as an archive URL). */
export function isGitSource(text: string): boolean {
  return URL_FORM.test(text) || SCP_FORM.test(text);
}

/** A path inside the repository: relative, no `..`, no `.git`. */
function checkPath(path: string, written: string): string {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..' || p.toLowerCase() === '.git')) {
    throw new StretcherError('MANIFEST_INVALID', `git source ${JSON.stringify(redactUrl(written))}: the path inside the repository may not contain ".." or ".git"`);
  }
  return parts.join('/');
}

function checkRef(ref: string, written: string): string | undefined {
  if (ref === '') return undefined;
  // What git check-ref-format allows, and never an option: `-` first would be read as a flag.
  if (ref.startsWith('-') || /[\s~^:?*[\\\0-\x1f\x7f]|\.\.|@\{|\/\/|^\/|\/$|\.lock$|\.$/.test(ref)) {
    throw new StretcherError('MANIFEST_INVALID', `git source ${JSON.stringify(redactUrl(written))}: ${JSON.stringify(ref)} is not a valid branch, tag or commit name`);
  }
  return ref;
}

/** Splits `org/app.git/path` at the end of the repository's name (repo-deploy's rule: after `.git`). */
function splitAtDotGit(repoAndPath: string): [string, string] {
  const m = /^(.*?\.git)(?:\/(.*))?$/.exec(repoAndPath);
  if (!m) return [repoAndPath, ''];
  return [m[1] as string, m[2] ?? ''];
}

/** A git source, or an error saying what is wrong with it. */
export function parseGitSource(written: string): GitSource {
  const hash = written.indexOf('#');
  const body = hash < 0 ? written : written.slice(0, hash);
  const ref = checkRef(hash < 0 ? '' : written.slice(hash + 1), written);
  const scp = SCP_FORM.exec(body);
  if (scp && !URL_FORM.test(body)) {
    const [repo, path] = splitAtDotGit(scp[3] as string);
    // ssh would read `-oProxyCommand=...` as an option: git refuses such hosts too, and so does stretcher, earlier.
    if (repo.startsWith('-') || (scp[1] as string).startsWith('-') || (scp[2] as string).startsWith('-'))
      throw new StretcherError('MANIFEST_INVALID', `git source ${JSON.stringify(redactUrl(written))} is not a repository`);
    return new GitSource(`${scp[1]}@${scp[2]}:${repo}`, 'ssh', checkPath(path, written), ref, written);
  }
  const m = URL_FORM.exec(body);
  if (!m) throw new StretcherError('MANIFEST_INVALID', `${JSON.stringify(redactUrl(written))} is not a git source`);
  const transport = (m[2] ?? 'git').toLowerCase() as GitSource['transport'];
  const afterScheme = body.slice(m[0].length);
  // `//` after the host separates the repository from the path inside it; without it, `.git/` does.
  const slash = afterScheme.indexOf('/');
  const authority = slash < 0 ? afterScheme : afterScheme.slice(0, slash);
  const rest = slash < 0 ? '' : afterScheme.slice(slash);
  const sub = rest.indexOf('//', 1);
  const [repoPath, path] = sub >= 0 ? [rest.slice(0, sub), rest.slice(sub + 2)] : splitAtDotGit(rest);
  const remote = `${transport}://${authority}${repoPath}`;
  let url: URL;
  try {
    url = new URL(remote);
  } catch {
    throw new StretcherError('MANIFEST_INVALID', `git source ${JSON.stringify(redactUrl(written))} is not a URL`);
  }
  if (transport === 'file' ? url.pathname === '/' || url.pathname === '' : !url.hostname) {
    throw new StretcherError('MANIFEST_INVALID', `git source ${JSON.stringify(redactUrl(written))} names no repository`);
  }
  if (url.hostname.startsWith('-') || decodeURIComponent(url.username).startsWith('-')) {
    throw new StretcherError('MANIFEST_INVALID', `git source ${JSON.stringify(redactUrl(written))}: a host or user starting with "-" would be read as an option`);
  }
  if (url.search) throw new StretcherError('MANIFEST_INVALID', `git source ${JSON.stringify(redactUrl(written))}: a query string is not part of a git URL`);
  return new GitSource(remote, transport, checkPath(path, written), ref, written);
}

/** 40 hex digits (SHA-1) or 64 (SHA-256): a full commit id. */
export function isCommitId(text: string): boolean {
  return /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/.test(text);
}

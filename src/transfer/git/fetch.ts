import { StretcherError } from '../../shared/errors.js';
import type { Log } from '../../shared/log.js';
import { TransferError } from '../failure.js';
import { withRetry } from '../retry.js';
import { GitError, runGit, sourceArgs } from './run.js';
import type { GitSource } from './source.js';

export interface GitTransferOptions {
  retry: number;
  retryWaitMs: number;
  timeoutMs: number;
  stallMs: number;
  env: NodeJS.ProcessEnv;
  log: Log;
  signal: AbortSignal;
}

/** Where a deploy's fetched commit is kept in a cache repository until it is unpacked. */
export const FETCHED_REF = 'refs/stretcher/fetched';

/**
 * What git's last words mean, as one clear line: the host, the repository or the ref is not there (final),
 * or the network failed (worth a retry). Undefined: the local repository is at fault (a corrupt cache).
 */
export function explainGitFailure(err: GitError, source: GitSource): StretcherError | undefined {
  const text = err.stderr.join('\n');
  const repo = source.remoteShown;
  if (/Could not resolve host|unable to look up|Could not resolve hostname|Name or service not known|Temporary failure in name resolution|nodename nor servname/i.test(text)) {
    const host = /(?:resolve host(?:name)?:?|look up)\s+([^\s:(]+)/i.exec(text)?.[1];
    return new TransferError(`cannot reach git repository ${repo}: unknown host${host ? ` ${host}` : ''}`, { stage: 'connect', errno: 'ENOTFOUND' });
  }
  if (/couldn't find remote ref|not our ref|no such ref|unadvertised object|invalid refspec|Remote branch .* not found/i.test(text)) {
    return new StretcherError('TRANSFER_FAILED', `${source.refShown.replace(/^ref/, 'ref')} not found in git repository ${repo}`);
  }
  if (/mismatched algorithms|object-format/i.test(text)) return undefined;
  if (
    /does not appear to be a git repository|repository not exported|Repository not found|not found: .*\.git|returned error: 404|No such file or directory|not a git repository|access denied/i.test(
      text,
    )
  ) {
    return new StretcherError('TRANSFER_FAILED', `git repository ${repo} does not exist (or is not readable by this user)`);
  }
  if (/dubious ownership/i.test(text)) return new StretcherError('TRANSFER_FAILED', `git refuses to read ${repo}: ${err.stderr.find((l) => /dubious ownership/i.test(l))}`);
  if (
    /Connection refused|Connection timed out|Failed to connect|Couldn't connect|Connection reset|timed out|unable to connect|Could not read from remote|early EOF|the remote end hung up|RPC failed|Operation too slow|returned error: 5\d\d/i.test(
      text,
    )
  ) {
    return new TransferError(`cannot fetch from git repository ${repo}: ${err.stderr[err.stderr.length - 1] ?? 'git failed'}`, { stage: 'connect' });
  }
  if (/Permission denied|Authentication failed|could not read Username|returned error: 40[13]|Host key verification failed/i.test(text)) {
    return new StretcherError('TRANSFER_FAILED', `git repository ${repo} refused access: ${err.stderr[err.stderr.length - 1]}`);
  }
  return undefined;
}

/**
 * Runs one talk with the remote under --retry, --retry-wait and --timeout, as downloads are: network
 * failures are retried, a missing host, repository or ref is final, and the whole is bounded by --timeout.
 */
export function withRemote<T>(what: string, source: GitSource, opts: GitTransferOptions, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
  return withRetry(what, opts, attempt, (err) => {
    const explained = err instanceof GitError ? explainGitFailure(err, source) : undefined;
    return { error: explained ?? err, retryable: explained instanceof TransferError && explained.facts.errno !== 'ENOTFOUND' };
  });
}

/** The refs to ask for: a commit id as itself; a name as git's fetch would read it (tags before branches). */
function candidates(ref: string | undefined): string[] {
  if (ref === undefined) return ['HEAD'];
  if (ref.startsWith('refs/')) return [ref, `${ref}^{}`];
  return [`refs/tags/${ref}^{}`, `refs/tags/${ref}`, `refs/heads/${ref}`, ref, `refs/${ref}`];
}

/**
 * The commit a source's ref points at now, by `git ls-remote` (what `watch` polls), or undefined for a
 * source pinned to a commit id. Annotated tags are peeled to their commit.
 */
export async function remoteCommit(source: GitSource, opts: GitTransferOptions): Promise<string> {
  const listed = await withRemote(`asking git repository ${source.remoteShown} for ${source.refShown}`, source, opts, async (signal) => {
    const { stdout } = await runGit(['ls-remote', ...sourceArgs(source), '--', source.remote, ...(source.ref === undefined ? ['HEAD'] : [])], {
      source,
      env: opts.env,
      log: opts.log,
      signal,
      stallSeconds: Math.ceil(opts.stallMs / 1000),
    });
    return stdout;
  });
  const refs = new Map<string, string>();
  for (const line of listed.split('\n')) {
    const [id, name] = line.split('\t');
    if (id && name) refs.set(name, id);
  }
  if (source.ref !== undefined && /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(source.ref)) return source.ref;
  for (const name of candidates(source.ref)) {
    const id = refs.get(name);
    if (id) return id;
  }
  throw new StretcherError('TRANSFER_FAILED', `${source.refShown} not found in git repository ${source.remoteShown}`);
}

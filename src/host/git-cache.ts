import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StretcherError } from '../shared/errors.js';
import type { Log } from '../shared/log.js';
import { FETCHED_REF, type GitTransferOptions, withRemote } from '../transfer/git/fetch.js';
import { GitError, runGit, sourceArgs } from '../transfer/git/run.js';
import { isCommitId, type GitSource } from '../transfer/git/source.js';
import { lockDest } from './lock.js';
import { removeTree } from './remove-tree.js';
import { untrustedBecause } from './trust.js';

export interface GitCacheOptions extends GitTransferOptions {
  /** The cache's directory (the state directory's `git/`, root's own and 0700), or a private one for this deploy. */
  root: string;
  /** Where the per-repository locks live, and how long to wait for another deploy using the same cache. */
  lockDir: string;
  lockTimeoutMs: number;
}

/** A commit fetched into a cache, held (locked) until the deploy has unpacked it. */
export interface FetchedCommit {
  commit: string;
  gitDir: string;
  release(): Promise<void>;
}

/**
 * Attributes that make `git archive` write the tree exactly as git stores it: $GIT_DIR/info/attributes
 * overrides the repository's own .gitattributes, so export-ignore, export-subst, eol conversion and ident
 * expansion cannot make the deployed files differ from the commit the checksum names.
 */
const AS_STORED = '* -export-ignore -export-subst -text -eol -crlf -ident -filter -working-tree-encoding\n';

/**
 * Fetches what a git source's ref points at into the repository's cache (bare, shallow: only the objects
 * the cache lacks cross the network), checks the commit is whole there, and returns it with the cache
 * locked. The ref is resolved only once the lock is held, so a deploy that waited for another one gets the
 * ref as it is now. A new cache is made in a temp directory and renamed into place (never half there); a
 * cache that git cannot fetch into or whose commit is incomplete is removed and fetched afresh.
 */
export async function fetchCommit(source: GitSource, expected: string | undefined, opts: GitCacheOptions): Promise<FetchedCommit> {
  await mkdir(opts.root, { recursive: true, mode: 0o700 });
  const lock = await lockDest(`git cache ${source.key}`, { dir: opts.lockDir, timeoutMs: opts.lockTimeoutMs, log: opts.log, signal: opts.signal });
  try {
    const gitDir = path.join(opts.root, `${source.key}.git`);
    await removeHalfMade(opts.root, source.key);
    let commit: string | undefined;
    if (await usableCache(gitDir, opts.log)) {
      try {
        await checkWhole(gitDir, opts);
        commit = await fetchInto(gitDir, source, opts);
      } catch (err) {
        if (!(err instanceof CacheBroken)) throw err;
        opts.log.warn(`the git cache of ${source.remoteShown} is broken (${err.message}); removing it and fetching afresh`);
        await removeTree(gitDir);
      }
    } else if (await lstat(gitDir).catch(() => undefined)) {
      opts.log.warn(`the git cache of ${source.remoteShown} is not a repository; removing it and fetching afresh`);
      await removeTree(gitDir);
    }
    if (commit === undefined) commit = await freshCache(gitDir, source, expected, opts);
    if (expected !== undefined && commit !== expected) {
      throw new StretcherError('CHECKSUM_MISMATCH', `checksum mismatch for ${source}: ${source.refShown} of ${source.remoteShown} is at commit ${commit}, not the checksum's ${expected}`);
    }
    await checkPath(gitDir, commit, source, opts);
    return { commit, gitDir, release: () => lock.release() };
  } catch (err) {
    await lock.release();
    throw err;
  }
}

/** The local repository is at fault, not the remote: worth one fetch into a fresh cache. */
class CacheBroken extends StretcherError {
  constructor(message: string) {
    super('TRANSFER_FAILED', message);
  }
}

/** A cache directory stretcher made: a directory of this user's, not writable by others, with a HEAD. */
async function usableCache(gitDir: string, log: Log): Promise<boolean> {
  const st = await lstat(gitDir).catch(() => undefined);
  if (!st) return false;
  if (!st.isDirectory() || untrustedBecause(st) !== undefined || (st.mode & 0o077) !== 0) {
    log.warn(`${gitDir} is not a private directory of this user's`);
    return false;
  }
  return (await lstat(path.join(gitDir, 'HEAD')).catch(() => undefined))?.isFile() === true;
}

/** Temp caches of this repository a killed deploy left (the lock is ours, so nobody is writing them). */
async function removeHalfMade(root: string, key: string): Promise<void> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (name.startsWith(`.${key}.new-`)) await removeTree(path.join(root, name));
  }
}

async function freshCache(gitDir: string, source: GitSource, expected: string | undefined, opts: GitCacheOptions): Promise<string> {
  const sha256 = (expected ?? source.ref ?? '').length === 64 && isCommitId(expected ?? source.ref ?? '');
  const tmp = path.join(opts.root, `.${source.key}.new-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    let commit: string;
    try {
      await initCache(tmp, sha256, opts);
      commit = await fetchInto(tmp, source, opts);
    } catch (err) {
      // An unpinned SHA-256 repository: the cache must be made for its object format.
      if (sha256 || !(err instanceof CacheBroken) || !/algorithm|object-format|object format/i.test(err.message)) throw err;
      await removeTree(tmp);
      await initCache(tmp, true, opts);
      commit = await fetchInto(tmp, source, opts);
    }
    await rename(tmp, gitDir);
    return commit;
  } catch (err) {
    await removeTree(tmp).catch(() => {});
    if (err instanceof CacheBroken) throw new StretcherError('TRANSFER_FAILED', `cannot fetch ${source.refShown} of git repository ${source.remoteShown}: ${err.message}`);
    throw err;
  }
}

async function initCache(dir: string, sha256: boolean, opts: GitCacheOptions): Promise<void> {
  await mkdir(dir, { mode: 0o700 });
  await runGit(['init', '--bare', '--quiet', ...(sha256 ? ['--object-format=sha256'] : []), dir], { env: opts.env, log: opts.log, signal: opts.signal });
  await writeFile(path.join(dir, 'info', 'attributes'), AS_STORED, { mode: 0o600 });
}

/**
 * One shallow fetch of the ref into `gitDir`, and the commit it brought, checked to be whole there (every
 * object it reaches present). Remote failures say what is missing; anything else is the cache's fault.
 */
async function fetchInto(gitDir: string, source: GitSource, opts: GitCacheOptions): Promise<string> {
  const ref = source.ref ?? 'HEAD';
  const local = { gitDir, env: opts.env, log: opts.log, signal: opts.signal };
  try {
    await withRemote(`fetching ${source.refShown} of git repository ${source.remoteShown}`, source, opts, (signal) =>
      runGit(['fetch', '--quiet', '--no-tags', '--no-write-fetch-head', '--no-recurse-submodules', '--depth=1', ...sourceArgs(source), '--', source.remote, `+${ref}:${FETCHED_REF}`], {
        ...local,
        signal,
        source,
        stallSeconds: Math.ceil(opts.stallMs / 1000),
      }),
    );
  } catch (err) {
    if (err instanceof GitError) throw new CacheBroken(err.message);
    throw err;
  }
  try {
    const { stdout } = await runGit(['rev-parse', '--verify', '--quiet', `${FETCHED_REF}^{commit}`], local);
    const commit = stdout.trim();
    if (!isCommitId(commit)) throw new CacheBroken(`${source.refShown} did not fetch a commit`);
    await runGit(['fsck', '--connectivity-only', '--no-dangling', '--no-progress', commit], local);
    return commit;
  } catch (err) {
    if (err instanceof GitError) throw new CacheBroken(err.message);
    throw err;
  }
}

/** An existing cache must be a repository whose refs reach only objects it has, before anything is fetched into it. */
async function checkWhole(gitDir: string, opts: GitCacheOptions): Promise<void> {
  try {
    await runGit(['fsck', '--connectivity-only', '--no-dangling', '--no-progress'], { gitDir, env: opts.env, log: opts.log, signal: opts.signal });
  } catch (err) {
    if (err instanceof GitError) throw new CacheBroken(err.message);
    throw err;
  }
}

/** The path inside the repository must be a directory of the commit: said before anything is unpacked. */
async function checkPath(gitDir: string, commit: string, source: GitSource, opts: GitCacheOptions): Promise<void> {
  if (source.path === '') return;
  const local = { gitDir, env: opts.env, log: opts.log, signal: opts.signal };
  const type = await runGit(['cat-file', '-t', `${commit}:${source.path}`], local).then(
    (r) => r.stdout.trim(),
    () => undefined,
  );
  if (type === 'tree') return;
  const what = type === undefined ? 'does not exist' : `is not a directory (a ${type === 'blob' ? 'file' : type})`;
  throw new StretcherError('TRANSFER_FAILED', `path ${JSON.stringify(source.path)} ${what} in commit ${commit} of git repository ${source.remoteShown}`);
}

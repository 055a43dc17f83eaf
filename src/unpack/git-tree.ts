import type { Log } from '../shared/log.js';
import { runGit } from '../transfer/git/run.js';
import type { GitSource } from '../transfer/git/source.js';
import { HostileArchiveError, LinkWalkBudget, staysInside, type Unpacked, type UnpackLimits } from './entry-rules.js';
import { createUnpacker } from './unpacker.js';

export interface GitTree {
  source: GitSource;
  gitDir: string;
  commit: string;
}

interface Context {
  env: NodeJS.ProcessEnv;
  log: Log;
  signal: AbortSignal;
}

/**
 * Unpacks the tree of a fetched commit at the source's path into `staging`, through the same unpacker and
 * entry rules as a tar archive: `git archive` writes the tree as a tar (files 0644 or 0755, symlinks, no
 * .git, nothing untracked) and streams it in. Git adds what an archive cannot be trusted with, checked
 * first: a symlink must stay inside the tree (judged by following every link on the way, as for zip,
 * and the deploy is refused otherwise), no entry may be called .git, and submodules are not fetched (their
 * directory comes out empty, with a warning).
 */
export async function unpackGitTree(tree: GitTree, staging: string, spool: string, limits: UnpackLimits, ctx: Context): Promise<Unpacked> {
  const { source, gitDir, commit } = tree;
  const treeish = source.path ? `${commit}:${source.path}` : commit;
  await checkEntries(tree, treeish, staging, ctx);
  // A tree (commit:path) has no date; a commit made of it with the original's dates gives every file the
  // commit's time, as an archive of the commit itself would.
  const archived = source.path ? await commitOfSubtree(tree, treeish, ctx) : commit;
  const unpacker = createUnpacker(staging, limits, ctx.log, spool);
  try {
    await runGit(['-c', 'tar.umask=022', 'archive', '--format=tar', archived], {
      gitDir,
      env: ctx.env,
      log: ctx.log,
      signal: ctx.signal,
      stdout: (chunk) => {
        if (unpacker.sink.write(chunk)) return undefined;
        return new Promise((resolve) => unpacker.sink.once('drain', () => resolve()));
      },
    });
    await new Promise<void>((resolve, reject) => unpacker.sink.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (err) {
    await unpacker.close();
    throw err;
  }
  return unpacker.finish();
}

async function commitOfSubtree(tree: GitTree, treeish: string, ctx: Context): Promise<string> {
  const local = { gitDir: tree.gitDir, env: ctx.env, log: ctx.log, signal: ctx.signal };
  const date = (await runGit(['log', '-1', '--format=%ct', tree.commit], local)).stdout.trim();
  const made = await runGit(['commit-tree', '-m', `${tree.source.path} of ${tree.commit}`, treeish], {
    ...local,
    extraEnv: {
      GIT_AUTHOR_NAME: 'stretcher',
      GIT_AUTHOR_EMAIL: 'stretcher@localhost',
      GIT_COMMITTER_NAME: 'stretcher',
      GIT_COMMITTER_EMAIL: 'stretcher@localhost',
      GIT_AUTHOR_DATE: `@${date} +0000`,
      GIT_COMMITTER_DATE: `@${date} +0000`,
    },
  });
  return made.stdout.trim();
}

/** Symlinks that lead out, entries named .git, submodules: decided from the tree before anything is written. */
async function checkEntries(tree: GitTree, treeish: string, staging: string, ctx: Context): Promise<void> {
  const local = { gitDir: tree.gitDir, env: ctx.env, log: ctx.log, signal: ctx.signal };
  const listed = (await runGit(['ls-tree', '-r', '-z', '--full-tree', treeish], local)).stdout;
  const links: { rel: string; id: string }[] = [];
  for (const record of listed.split('\0')) {
    if (!record) continue;
    const tab = record.indexOf('\t');
    const [mode, type, id] = record.slice(0, tab).split(' ');
    const rel = record.slice(tab + 1);
    if (rel.split('/').some((part) => part.toLowerCase() === '.git')) throw new HostileArchiveError(`refusing commit ${tree.commit}: it has an entry ${JSON.stringify(rel)} inside a .git`);
    if (type === 'commit') ctx.log.warn(`submodule ${JSON.stringify(rel)} is not fetched: its directory is deployed empty`);
    if (mode === '120000' && id) links.push({ rel, id });
  }
  if (links.length === 0) return;
  const targets = await readBlobs(
    tree,
    links.map((l) => l.id),
    ctx,
  );
  const map = new Map(links.map((l, i) => [l.rel, targets[i] ?? ''] as const));
  const budget = new LinkWalkBudget();
  for (const [rel, target] of map) {
    if (!staysInside(staging, rel, target, map, budget)) {
      throw new HostileArchiveError(`refusing commit ${tree.commit}: symlink ${JSON.stringify(rel)} -> ${JSON.stringify(target)} points outside the tree`);
    }
  }
}

/** The contents of small blobs: symlink targets. */
async function readBlobs(tree: GitTree, ids: readonly string[], ctx: Context): Promise<string[]> {
  const out: string[] = [];
  // One cat-file per link: links are few, and a tree full of them is still linear.
  for (const id of ids) {
    const { stdout } = await runGit(['cat-file', 'blob', id], { gitDir: tree.gitDir, env: ctx.env, log: ctx.log, signal: ctx.signal });
    out.push(stdout);
  }
  return out;
}

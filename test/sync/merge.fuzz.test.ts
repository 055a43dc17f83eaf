import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, lchownSync, lstatSync, lutimesSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { compileExcludes } from '../../src/sync/excludes.js';
import { mergeInto } from '../../src/sync/merge.js';
import { Log } from '../../src/shared/log.js';
import { comparedOf, reuseFor } from '../../src/unpack/reuse.js';
import { createUnpacker } from '../../src/unpack/unpacker.js';
import { type TarEntry, tar } from '../helpers/tar.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * The merge must leave dest exactly as `rsync -a --delete --checksum` with the same excludes would:
 * random previous trees and random archives, merged by stretcher and by real rsync into two copies, then
 * compared entry by entry (type, content, link target, mode, owner, mtime). Names, contents and mtimes
 * come from small sets, so the same name with another type, the same size and mtime with other content,
 * and excluded entries on both sides all happen often. FUZZ_RUNS raises the number of runs.
 */

const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
const ROOT = process.getuid?.() === 0;

type Node =
  | { kind: 'file'; body: string; mode: number; mtime: number; uid: number }
  | { kind: 'dir'; mode: number; mtime: number; uid: number; children: Record<string, Node> }
  | { kind: 'link'; target: string };

const name = fc.constantFrom('a', 'b', 'c', 'app.pid', 'keep', 'log');
const mtime = fc.constantFrom(1_000_000_000, 1_500_000_000);
const uid = ROOT ? fc.constantFrom(0, 0, 0, 1001) : fc.constant(process.getuid?.() ?? 0);
const file = fc.record({ kind: fc.constant('file' as const), body: fc.constantFrom('', 'one', 'two', 'owt', 'three\n'), mode: fc.constantFrom(0o644, 0o600, 0o755, 0o4755), mtime, uid });
const link = fc.record({ kind: fc.constant('link' as const), target: fc.constantFrom('a', '../b', 'nowhere', '/etc') });
const { tree } = fc.letrec<{ tree: Node; node: Node }>((tie) => ({
  tree: fc.record({ kind: fc.constant('dir' as const), mode: fc.constantFrom(0o755, 0o700, 0o775), mtime, uid, children: fc.dictionary(name, tie('node'), { maxKeys: 4 }) }),
  node: fc.oneof({ depthSize: 'small', withCrossShrink: true }, file, file, link, tie('tree')),
}));
const excludes = fc.subarray(['*.pid', 'b', '/c', 'log/', 'keep/***', 'a/a'], { maxLength: 3 });

function build(root: string, node: Node): void {
  if (node.kind === 'link') {
    symlinkSync(node.target, root);
    return lutimesSync(root, 1_200_000_000, 1_200_000_000);
  }
  if (node.kind === 'file') {
    writeFileSync(root, node.body);
  } else {
    mkdirSync(root);
    for (const [n, child] of Object.entries(node.children)) build(path.join(root, n), child);
  }
  if (ROOT) lchownSync(root, node.uid, node.uid);
  chmodSync(root, node.mode);
  utimesSync(root, node.mtime, node.mtime);
}

/**
 * Every entry below root as one line: type, mode, owner, mtime, and the content or link target. A
 * directory the archive does not have, kept only for the excluded entries in it, has whatever mtime the
 * deletions in it left (rsync's unlinks and our renames differ there), so its mtime is not compared.
 */
function describe(root: string, archiveDirs: Set<string>, rel = ''): string[] {
  const out: string[] = [];
  for (const n of readdirSync(path.join(root, rel)).sort()) {
    const p = rel ? `${rel}/${n}` : n;
    const abs = path.join(root, p);
    const st = lstatSync(abs);
    if (st.isSymbolicLink()) out.push(`${p} link -> ${readlinkSync(abs)} ${Math.round(st.mtimeMs / 1000)}`);
    else {
      const time = st.isDirectory() && !archiveDirs.has(p) ? 'kept' : Math.round(st.mtimeMs / 1000);
      const common = `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${time}`;
      if (st.isDirectory()) out.push(`${p}/ ${common}`, ...describe(root, archiveDirs, p));
      else out.push(`${p} ${common} ${JSON.stringify(readFileSync(abs, 'utf8'))}`);
    }
  }
  return out;
}

function dirsOf(node: Node, rel = '', out = new Set<string>()): Set<string> {
  if (node.kind !== 'dir') return out;
  for (const [n, child] of Object.entries(node.children)) {
    const p = rel ? `${rel}/${n}` : n;
    if (child.kind === 'dir') {
      out.add(p);
      dirsOf(child, p, out);
    }
  }
  return out;
}

function top(root: string): string {
  const st = lstatSync(root);
  return `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${Math.round(st.mtimeMs / 1000)}`;
}

/**
 * Runs real rsync from `rsyncSrc` into `theirs` and our merge into `ours`, then compares the two trees. Where
 * rsync could not do it (a directory kept for its excluded entries where the archive has a file), neither
 * may we.
 */
async function likeRsync(t: { rsyncSrc: string; theirs: string; ours: string; archive: Node; patterns: string[] }, merge: () => Promise<unknown>): Promise<void> {
  const rsync = spawnSync('rsync', ['-a', '--delete', '--checksum', ...t.patterns.flatMap((p) => ['--exclude', p]), `${t.rsyncSrc}/`, `${t.theirs}/`], { stdio: ['ignore', 'ignore', 'pipe'] });
  const merged = merge();
  if (rsync.status !== 0) {
    assert.equal(rsync.status, 23, rsync.stderr.toString());
    await assert.rejects(merged, /excluded entries are kept there/);
    return;
  }
  await merged;
  const dirs = dirsOf(t.archive);
  assert.deepEqual(describe(t.ours, dirs), describe(t.theirs, dirs));
  assert.equal(top(t.ours), top(t.theirs));
}

test('merge: dest ends exactly as rsync -a --delete --checksum leaves it, excludes included', async (t) => {
  const dir = tempDir(t);
  const log = new Log('text', { write: () => true } as unknown as NodeJS.WritableStream);
  let n = 0;
  await fc.assert(
    fc.asyncProperty(tree, tree, excludes, async (before, archive, patterns) => {
      const run = path.join(dir, String(n++));
      mkdirSync(run);
      try {
        const [ours, theirs, staged, rsyncSrc, custody] = ['ours', 'theirs', 'staged', 'rsync-src', 'custody'].map((x) => path.join(run, x)) as [string, string, string, string, string];
        build(ours, before);
        build(theirs, before);
        build(staged, archive);
        build(rsyncSrc, archive);
        mkdirSync(custody, { mode: 0o700 });
        await likeRsync({ rsyncSrc, theirs, ours, archive, patterns }, async () => mergeInto(staged, ours, { rules: await compileExcludes(patterns), log, custody, keepOwners: ROOT }));
      } finally {
        rmSync(run, { recursive: true, force: true });
      }
    }),
    { numRuns: RUNS, verbose: 1 },
  );
});

/**
 * A next build of `before`: its entries, some replaced by `other`'s at the same names (recursively where both
 * are directories), so most files are there again with the same bytes, as in a real update.
 */
function nextBuild(before: Node, other: Node): Node {
  if (before.kind !== 'dir' || other.kind !== 'dir') return other;
  const children: Record<string, Node> = Object.fromEntries(Object.entries(before.children).map(([n, child]) => [n, rebuilt(child)]));
  for (const [n, child] of Object.entries(other.children)) children[n] = before.children[n] ? nextBuild(before.children[n] as Node, child) : child;
  return { ...other, children };
}

/** The same entry from a fresh build: every mtime new, and some files with another mode. */
function rebuilt(node: Node): Node {
  if (node.kind === 'link') return node;
  if (node.kind === 'file') return { ...node, mtime: 1_600_000_000, mode: node.body.length % 2 ? 0o755 : node.mode };
  return { ...node, mtime: 1_600_000_000, children: Object.fromEntries(Object.entries(node.children).map(([n, child]) => [n, rebuilt(child)])) };
}
const update = fc.tuple(tree, tree, fc.nat(3)).map(([before, other, unrelated]) => [before, unrelated === 0 ? other : nextBuild(before, other)] as const);

/** The archive tree as tar entries, parents first, the root as "." (its attributes are the archive's). */
function entriesOf(node: Node, rel = '.'): TarEntry[] {
  if (node.kind === 'link') return [{ path: rel, type: 'symlink', linkpath: node.target, mtime: 1_200_000_000, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }];
  const owner = { uid: node.uid, gid: node.uid, mode: node.mode, mtime: node.mtime };
  if (node.kind === 'file') return [{ path: rel, body: node.body, ...owner }];
  const children = Object.entries(node.children).flatMap(([n, child]) => entriesOf(child, rel === '.' ? n : `${rel}/${n}`));
  return [{ path: rel, type: 'dir', ...owner }, ...children];
}

test('merge after unpacking that compared with dest (files dest had byte for byte never staged): dest ends exactly as rsync leaves it', async (t) => {
  const dir = tempDir(t);
  const log = new Log('text', { write: () => true } as unknown as NodeJS.WritableStream);
  const limits = { maxBytes: 1 << 30, maxEntries: 1 << 20 };
  let n = 0;
  let keptInAll = 0;
  await fc.assert(
    fc.asyncProperty(update, excludes, async ([before, archive], patterns) => {
      const run = path.join(dir, String(n++));
      mkdirSync(run);
      try {
        const [ours, theirs, staged, rsyncSrc, custody] = ['ours', 'theirs', 'staged', 'rsync-src', 'custody'].map((x) => path.join(run, x)) as [string, string, string, string, string];
        build(ours, before);
        build(theirs, before);
        build(rsyncSrc, archive);
        mkdirSync(staged, { mode: 0o700 });
        mkdirSync(custody, { mode: 0o700 });
        // Files changed within a timestamp tick of their comparison are not compared (racilyClean).
        await sleep(25);
        const reuse = reuseFor(ours);
        const unpacker = createUnpacker(staged, limits, log, path.join(run, 'spool'), reuse);
        await pipeline(Readable.from([tar(entriesOf(archive))]), unpacker.sink);
        await unpacker.finish();
        const compared = comparedOf(reuse);
        keptInAll += compared.kept.size;
        await likeRsync({ rsyncSrc, theirs, ours, archive, patterns }, async () => mergeInto(staged, ours, { rules: await compileExcludes(patterns), log, custody, keepOwners: ROOT, compared }));
      } finally {
        rmSync(run, { recursive: true, force: true });
      }
    }),
    { numRuns: RUNS, verbose: 1 },
  );
  assert.ok(keptInAll > 0, 'some files were found equal while unpacking');
});

import { lstat, readdir, readFile, realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Minimatch as Glob } from 'minimatch';
import { StretcherError } from '../shared/errors.js';
import type { Log } from '../shared/log.js';

/**
 * rsync's meaning of an exclude pattern, so that the mv strategy deploys exactly what rsync would:
 * - no "/" (and no "**"): matches the last path component, at any depth ("*.pid", "baz");
 * - a leading "/": anchored at the top of the tree ("/tmp");
 * - another "/": matched against the end of the path, on component boundaries ("foo/baz");
 * - a trailing "/": directories only ("cache/"); a trailing "/***": the directory and all inside it.
 * `*` and `?` never cross "/", `**` does. The globbing is minimatch's, without braces or extglobs, which
 * rsync does not have.
 */
export interface ExcludeRule {
  pattern: string;
  matches(rel: string, isDir: boolean): boolean;
}

const GLOB_OPTIONS = { dot: true, nobrace: true, noext: true, nonegate: true, nocomment: true } as const;

/** The manifest's patterns compiled. minimatch (125 KB of bundle) is loaded only for a deploy that has some. */
export async function compileExcludes(patterns: readonly string[]): Promise<ExcludeRule[]> {
  if (patterns.length === 0) return [];
  const { Minimatch } = await import('minimatch');
  return patterns.map((p) => compileExclude(p, Minimatch));
}

function compileExclude(pattern: string, Minimatch: typeof Glob): ExcludeRule {
  let p = pattern;
  let dirOnly = false;
  let withContents = false;
  if (p.endsWith('/***')) {
    withContents = true;
    p = p.slice(0, -4);
  } else if (p.endsWith('/')) {
    dirOnly = true;
    p = p.replace(/\/+$/, '');
  }
  const anchored = p.startsWith('/');
  if (anchored) p = p.replace(/^\/+/, '');
  const wholePath = anchored || p.includes('/') || p.includes('**');
  const glob = new Minimatch(p, GLOB_OPTIONS);
  const depth = p.split('/').length;
  const test = (rel: string): boolean => {
    const parts = rel.split('/');
    if (!wholePath) return glob.match(parts[parts.length - 1] as string);
    if (anchored) return glob.match(rel);
    // Every suffix starting at a component boundary; "**" patterns may span any number of components.
    const from = p.includes('**') ? 0 : Math.max(0, parts.length - depth);
    for (let i = from; i < parts.length; i++) if (glob.match(parts.slice(i).join('/'))) return true;
    return false;
  };
  return {
    pattern,
    matches(rel, isDir) {
      if (withContents) {
        const parts = rel.split('/');
        // Anything below the directory, or the directory itself ("dir/": a file of that name is not).
        for (let n = parts.length - 1; n >= 1; n--) if (test(parts.slice(0, n).join('/'))) return true;
        return isDir && test(rel);
      }
      if (dirOnly && !isDir) return false;
      return test(rel);
    },
  };
}

export function isExcluded(rules: readonly ExcludeRule[], rel: string, isDir: boolean): boolean {
  return rules.some((r) => r.matches(rel, isDir));
}

/** An --exclude-from file: one pattern a line; blank lines and lines starting with ";" or "#" are ignored. */
export function parseExcludeFile(text: string, name: string): string[] {
  const patterns: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.startsWith('+ ')) {
      throw new StretcherError('SYNC_FAILED', `${name}: include rules ("+ ...") are only understood by the rsync strategy`);
    }
    patterns.push(line.startsWith('- ') ? line.slice(2) : line);
  }
  return patterns;
}

/** Reads exclude_from from inside the unpacked tree, refusing a path (or a symlink) that leads out of it. */
export async function readExcludeFrom(staging: string, excludeFrom: string): Promise<string[]> {
  const file = path.join(staging, excludeFrom);
  let real: string;
  try {
    real = await realpath(file);
  } catch {
    throw new StretcherError('SYNC_FAILED', `exclude_from file ${JSON.stringify(excludeFrom)} is not in the archive`);
  }
  const root = await realpath(staging);
  if (!real.startsWith(root + path.sep)) throw new StretcherError('SYNC_FAILED', `exclude_from ${JSON.stringify(excludeFrom)} points outside the archive`);
  return parseExcludeFile(await readFile(real, 'utf8'), `exclude_from ${excludeFrom}`);
}

/**
 * Calls `onMatch` for every excluded entry below `root` (not descending into excluded directories, nor
 * following symlinks), and returns how many there were.
 */
export async function walkExcluded(root: string, rules: readonly ExcludeRule[], onMatch: (rel: string, isDir: boolean) => Promise<void>): Promise<number> {
  if (rules.length === 0) return 0;
  let count = 0;
  const visit = async (relDir: string): Promise<void> => {
    const entries = await readdir(path.join(root, relDir), { withFileTypes: true });
    for (const entry of entries) {
      const rel = relDir ? `${relDir}/${entry.name}` : entry.name;
      const isDir = entry.isDirectory();
      if (isExcluded(rules, rel, isDir)) {
        count++;
        await onMatch(rel, isDir);
      } else if (isDir) {
        await visit(rel);
      }
    }
  };
  if ((await lstat(root)).isDirectory()) await visit('');
  return count;
}

/** The manifest's excludes and the patterns of its exclude_from file (read from the unpacked tree), compiled. */
export async function excludeRules(staging: string, excludes: readonly string[], excludeFrom: string | undefined): Promise<ExcludeRule[]> {
  const patterns = [...excludes];
  if (excludeFrom !== undefined) patterns.unshift(...(await readExcludeFrom(staging, excludeFrom)));
  return compileExcludes(patterns);
}

/**
 * Removes excluded entries from an unpacked tree (strategies that do not run rsync must not deploy them)
 * and returns the compiled rules, for carrying excluded files over from an old tree.
 */
export async function pruneExcluded(staging: string, excludes: readonly string[], excludeFrom: string | undefined, log: Log, label: string): Promise<ExcludeRule[]> {
  const rules = await excludeRules(staging, excludes, excludeFrom);
  const pruned = await walkExcluded(staging, rules, (rel) => rm(path.join(staging, rel), { recursive: true, force: true }));
  if (pruned) log.info(`${label}: left out ${pruned} excluded archive entries`);
  return rules;
}

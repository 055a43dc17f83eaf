import { readFileSync, type Stats } from 'node:fs';
import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { StretcherError } from '../shared/errors.js';

/**
 * Node has no openat(): stretcher works on paths, and a path is only as safe as every directory it passes
 * through. A directory that another local user can write (its owner, or anyone with group or other write
 * permission) lets that user swap an entry for a symlink between two of our system calls, and turn a
 * rename, chmod, chown or delete by root into one on a file of their choosing. So stretcher works only in
 * directories that nobody but root and the user it runs as can change (sshd's StrictModes rule), and
 * refuses, naming the directory and why, anywhere else.
 */
export class UntrustedPathError extends StretcherError {
  override name = 'UntrustedPathError';
  constructor(message: string) {
    super('UNTRUSTED_PATH', message);
  }
}

const euid = (): number => process.geteuid?.() ?? 0;

/** Users whose changes stretcher trusts: root and the user it runs as. */
export function trustedOwner(uid: number): boolean {
  return uid === 0 || uid === euid();
}

/**
 * Why another user could change this directory's entries ("is owned by app (uid 1001), mode 0755"), or
 * undefined when nobody but root and this user can.
 */
export function untrustedBecause(st: Stats): string | undefined {
  const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
  if (!trustedOwner(st.uid)) return `is owned by ${userName(st.uid)}, mode ${mode}`;
  if (st.mode & 0o002) return `is writable by everyone, mode ${mode}`;
  if (st.mode & 0o020) return `is writable by group ${groupName(st.gid)}, mode ${mode}`;
  return undefined;
}

/** Whether only root and this process's user can change the entries of a directory with these stats. */
export function isTrustedDir(st: Stats): boolean {
  return st.isDirectory() && untrustedBecause(st) === undefined;
}

/**
 * Checks that nobody but root and this user can change what `dir` resolves to, nor its entries: every
 * directory from / down to it. A sticky directory owned by root (/tmp) may be passed through on the way to
 * one owned by root or this user: the sticky bit stops others renaming or deleting what they do not own.
 * With `sticky`, `dir` itself may be such a directory (TMPDIR: stretcher only makes private directories
 * in it, under random names). `refusing` says what is refused, for the error ("to deploy to /srv/app").
 * Resolves to the directory's real path.
 */
export async function checkTrustedDir(dir: string, refusing: string, options: { sticky?: boolean } = {}): Promise<string> {
  const real = await realpath(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new StretcherError('UNTRUSTED_PATH', `cannot use ${refusing}: it does not exist`);
    throw err;
  });
  const chain = [
    '/',
    ...real
      .split('/')
      .filter(Boolean)
      .map((_, i, parts) => `/${parts.slice(0, i + 1).join('/')}`),
  ];
  const stats = await Promise.all(chain.map((p) => lstat(p)));
  for (const [i, st] of stats.entries()) {
    const at = chain[i] as string;
    if (!st.isDirectory()) throw new UntrustedPathError(`refusing ${refusing}: ${at} is not a directory`);
    const why = untrustedBecause(st);
    if (!why) continue;
    const next = stats[i + 1];
    const shieldsNext = isSharedSticky(st) && next !== undefined && trustedOwner(next.uid);
    const shieldsItself = next === undefined && options.sticky === true && isSharedSticky(st);
    if (shieldsNext || shieldsItself) continue;
    throw new UntrustedPathError(
      `refusing ${refusing}: ${at} ${why}, so another user could swap what stretcher works on there; make ${at} owned by root (or by the user stretcher runs as) and not writable by group or others (chown root ${at} && chmod go-w ${at}), or run stretcher as the user who owns it`,
    );
  }
  return real;
}

/** /tmp's kind: sticky and owned by root or this user, so nobody else can rename what they do not own. */
function isSharedSticky(st: Stats): boolean {
  return (st.mode & 0o1000) !== 0 && trustedOwner(st.uid);
}

/** The nearest existing directory at or above `p` (dest may not exist yet; its parent might not either). */
export async function nearestExisting(p: string): Promise<string> {
  let current = path.resolve(p);
  for (;;) {
    const st = await lstat(current).catch(() => undefined);
    if (st) return current;
    const up = path.dirname(current);
    if (up === current) return current;
    current = up;
  }
}

let users: Map<number, string> | undefined;
let groups: Map<number, string> | undefined;

function table(file: string): Map<number, string> {
  const map = new Map<number, string>();
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const [name, , id] = line.split(':');
      if (name && id !== undefined && /^\d+$/.test(id)) map.set(Number(id), name);
    }
  } catch {
    // No /etc/passwd (a container): numbers will do.
  }
  return map;
}

function userName(uid: number): string {
  users ??= table('/etc/passwd');
  const name = users.get(uid);
  return name ? `${name} (uid ${uid})` : `uid ${uid}`;
}

function groupName(gid: number): string {
  groups ??= table('/etc/group');
  const name = groups.get(gid);
  return name ? `${name} (gid ${gid})` : `gid ${gid}`;
}

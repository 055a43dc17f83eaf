import { lstat, mkdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import { StretcherError } from '../shared/errors.js';
import { nearestExisting } from './trust.js';

/** Kernel filesystems: directories there are not storage, and mkdir in them can misbehave. */
const PSEUDO = ['/proc', '/sys', '/dev'];

/** Refuses a path that is, or resolves to, a place in /proc, /sys or /dev, naming the option it came from. */
export async function checkRealFilesystem(dir: string, what: string): Promise<void> {
  const start = await nearestExisting(dir);
  const real = path.join(await realpath(start).catch(() => start), path.relative(start, path.resolve(dir)));
  for (const p of [path.resolve(dir), real]) {
    const pseudo = PSEUDO.find((root) => p === root || p.startsWith(`${root}/`));
    if (pseudo) throw new StretcherError('STATE_UNUSABLE', `${what} ${dir} is in ${pseudo}, a kernel filesystem, not storage: choose a directory on a disk`);
  }
}

/**
 * mkdir -p, one component at a time and without following a symlink at the end of the path: node's
 * recursive mkdir loops for ever on some paths (in /proc), and every path option must end in a result
 * or an error promptly. Made directories get `mode`.
 */
export async function makeDirs(dir: string, mode: number): Promise<void> {
  const parts = path.resolve(dir).split('/').filter(Boolean);
  let current = '/';
  for (const part of parts) {
    current = path.join(current, part);
    const st = await lstat(current).catch(() => undefined);
    if (st?.isDirectory() || (st?.isSymbolicLink() && current !== path.resolve(dir))) continue;
    if (st) throw new StretcherError('STATE_UNUSABLE', `${current} is not a directory`);
    await mkdir(current, { mode }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
}

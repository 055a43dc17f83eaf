import path from 'node:path';
import { StretcherError } from '../shared/errors.js';

/**
 * rsync --delete and mv replace dest wholesale, so a typo'd or templated-empty dest could wipe a system.
 * These are refused before anything is downloaded. Deeper paths (/etc/nginx, /var/www/app) stay allowed:
 * deploying configuration there is a normal use.
 */
const PROTECTED = new Set([
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/home',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/lost+found',
  '/media',
  '/mnt',
  '/opt',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/srv',
  '/sys',
  '/tmp',
  '/usr',
  '/var',
  '/usr/bin',
  '/usr/lib',
  '/usr/lib64',
  '/usr/libexec',
  '/usr/local',
  '/usr/sbin',
  '/usr/share',
  '/usr/include',
  '/usr/src',
  '/var/lib',
  '/var/log',
  '/var/cache',
  '/var/spool',
  '/var/tmp',
  '/var/run',
]);

/** Throws, saying why, when `dest` (or the key named `key`, say releases_dir) must not be deployed over. */
export function checkDest(dest: string, key = 'dest'): void {
  const refuse = (why: string): never => {
    throw new StretcherError('DEST_INVALID', `${key} ${JSON.stringify(dest)} ${why}`);
  };
  if (!path.isAbsolute(dest)) refuse('must be an absolute path');
  const normal = path.resolve(dest);
  if (PROTECTED.has(normal)) refuse('is a system directory; refusing to deploy over it');
  // /proc/self/root and /proc/PID/root lead anywhere, and nothing is deployed into a kernel filesystem.
  const kernel = ['/proc', '/sys', '/dev'].find((root) => normal.startsWith(`${root}/`));
  if (kernel) refuse(`is in ${kernel}, a kernel filesystem (/proc/self/root/... is another name for /...); refusing to deploy there`);
  if (path.dirname(normal) === '/home') refuse('is a home directory; deploy into a directory below it');
}

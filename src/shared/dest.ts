import path from 'node:path';

/**
 * The one spelling of a dest: absolute, without `//`, `.` or a trailing `/` (`/srv//app/` is `/srv/app`;
 * a relative --dest is taken from the working directory). The manifest, the state, locks, status,
 * releases and rollback all key on it.
 */
export function normalDest(dest: string): string {
  return path.resolve(dest);
}

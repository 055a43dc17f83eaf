import { spawn } from 'node:child_process';
import { lstat, rmdir } from 'node:fs/promises';
import { StretcherError } from '../shared/errors.js';

/**
 * Removes a tree: a staging tree, an old dest moved aside, a pruned release, debris of a killed deploy.
 * GNU `rm -rf` walks with openat() and never follows a symlink, even one swapped in while it works, and
 * copes with trees deeper than PATH_MAX; node's fs.rm works by path and does neither, so it is not used.
 * `--one-file-system` keeps it out of anything mounted inside the tree. A tree with read-only directories
 * (which a non-root deploy may have unpacked) is made writable by its owner and removed again.
 */
export async function removeTree(dir: string): Promise<void> {
  // Staging is usually gone (renamed into place) or empty (merged) by now, custody empty: no process for
  // nothing. rmdir removes only an empty directory and never follows a symlink.
  if (
    await rmdir(dir).then(
      () => true,
      () => false,
    )
  )
    return;
  if (!(await lstat(dir).catch(() => undefined))) return;
  let failure = await run('rm', ['-rf', '--one-file-system', '--', dir]);
  if (failure !== undefined && (await lstat(dir).catch(() => undefined))) {
    // chmod -R does not follow symlinks it meets on the way (GNU chmod, without -L).
    await run('chmod', ['-R', 'u+rwx', '--', dir]);
    failure = await run('rm', ['-rf', '--one-file-system', '--', dir]);
  }
  if (failure !== undefined && (await lstat(dir).catch(() => undefined))) throw new StretcherError('SYNC_FAILED', `cannot remove ${dir}: ${failure}`);
}

/** Runs a coreutils program; undefined when it succeeded, else what it said. */
function run(file: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let said = '';
    child.stderr.on('data', (d: Buffer) => {
      if (said.length < 2000) said += d.toString();
    });
    child.on('error', (err) => resolve(`${file}: ${err.message}`));
    child.on('close', (code) => resolve(code === 0 ? undefined : said.trim().split('\n')[0] || `${file} exited with status ${code}`));
  });
}

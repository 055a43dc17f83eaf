import { spawn } from 'node:child_process';
import { lstat, rm } from 'node:fs/promises';

/**
 * Removes a tree that stretcher made: a staging tree, an old dest moved aside, a pruned release. `rm -rf`
 * is faster than fs.rm, which sends every unlink through libuv's pool, one round trip each
 * (bench/RESULTS.md), and it does not block the event loop as a synchronous walk would. fs.rm remains
 * where rm cannot run or fails.
 */
export async function removeTree(dir: string): Promise<void> {
  // Staging is usually gone by now (renamed into place): no process for nothing.
  if (!(await lstat(dir).catch(() => undefined))) return;
  const removed = await new Promise<boolean>((resolve) => {
    const child = spawn('rm', ['-rf', '--', dir], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('close', (code) => resolve(code === 0));
  });
  if (!removed) await rm(dir, { recursive: true, force: true });
}

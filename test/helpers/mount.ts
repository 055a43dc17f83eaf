import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/**
 * Runs `fn` with a tmpfs mounted at `dir` (`options` as for mount -o: a size, a mode), for a full disk or a
 * mount point. Unmounted here, not in t.after: after-hooks run in order, and the temp dir's removal comes
 * first. The test is skipped where mounting needs root.
 */
export async function withTmpfs(t: TestContext, dir: string, options: string, fn: () => Promise<void>): Promise<void> {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    t.skip('mounting a tmpfs needs root');
    return;
  }
  try {
    await fn();
  } finally {
    execFileSync('umount', [dir]);
  }
}

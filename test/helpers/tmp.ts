import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';

/** A private directory removed when the test ends. */
export function tempDir(t: TestContext, prefix = 'stretcher-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  // rm -rf copes with what rmSync does not: trees deeper than PATH_MAX (an attack test makes one).
  t.after(() => {
    if (spawnSync('rm', ['-rf', '--', dir]).status !== 0) rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

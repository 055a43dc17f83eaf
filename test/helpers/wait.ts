import { setTimeout as sleep } from 'node:timers/promises';
import { readFileSync } from 'node:fs';

/** Polls `check` every 25 ms for at most `limitMs` (a bounded loop, as every wait in the tests is). */
export async function until(check: () => Promise<boolean> | boolean, what: string, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/**
 * Waits until a hook has finished writing a line to `file` and returns it. A shell's `echo x > f` creates
 * the file before it writes, so "the file exists" alone would race with the write.
 */
export async function untilLine(file: string, what: string, limitMs = 20_000): Promise<string> {
  let text = '';
  await until(
    () => {
      try {
        text = readFileSync(file, 'utf8');
      } catch {
        return false;
      }
      return text.endsWith('\n');
    },
    what,
    limitMs,
  );
  return text;
}

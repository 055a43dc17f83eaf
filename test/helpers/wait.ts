import { setTimeout as sleep } from 'node:timers/promises';

/** Polls `check` every 25 ms for at most `limitMs` (a bounded loop, as every wait in the tests is). */
export async function until(check: () => Promise<boolean> | boolean, what: string, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

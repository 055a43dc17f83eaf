import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runInNewContext } from 'node:vm';
import { Scavenger } from '../../src/shared/scavenger.js';

const MiB = 1 << 20;

/** Buffers dropped at once, as inflated chunks are once parsed: memory outside V8's heap, until a GC. */
function dropBuffers(count: number): void {
  for (let i = 0; i < count; i++) Buffer.allocUnsafeSlow(MiB).fill(i);
}

async function arrayBufferBytes(): Promise<number> {
  // V8 frees the memory of dead ArrayBuffers on a background thread just after the GC.
  await sleep(50);
  return process.memoryUsage().arrayBuffers;
}

test('scavenger: buffers that became garbage are freed once `everyBytes` have been discarded, not before', async () => {
  const scavenger = new Scavenger(32 * MiB);
  const start = await arrayBufferBytes();
  dropBuffers(32);
  scavenger.discarded(31 * MiB);
  assert.ok((await arrayBufferBytes()) >= start + 30 * MiB, 'nothing is collected below the threshold');
  scavenger.discarded(MiB);
  assert.ok((await arrayBufferBytes()) < start + 4 * MiB, 'collected at the threshold');
});

test('scavenger: gc() is not left on our global or on contexts made later', () => {
  new Scavenger(1).discarded(1);
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
  assert.equal(runInNewContext('typeof gc'), 'undefined');
});

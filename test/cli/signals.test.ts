import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSignals } from '../../src/cli/signals.js';

test('the failure commands are bounded from the signal on, not from when the process started', async () => {
  const source = new EventEmitter();
  const signals = createSignals(source, 50, 60_000);
  // A long deploy that fails on its own: its failure commands must still be able to run.
  await sleep(120);
  assert.equal(signals.cleanupSignal.aborted, false, 'no signal, no bound');
  source.emit('SIGTERM');
  assert.equal(signals.signal.aborted, true);
  assert.equal(signals.cleanupSignal.aborted, false, 'the failure commands start after the first signal');
  await sleep(120);
  assert.equal(signals.cleanupSignal.aborted, true, 'and are cut short once their time after it is up');
  const second = createSignals(new EventEmitter(), 60_000, 60_000);
  const emitter = new EventEmitter();
  const s2 = createSignals(emitter, 60_000, 60_000);
  emitter.emit('SIGINT');
  emitter.emit('SIGINT');
  assert.equal(s2.cleanupSignal.aborted, true, 'a second signal cuts them short at once');
  assert.equal(second.signal.aborted, false);
});

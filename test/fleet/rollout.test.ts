import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groups, hostResult, rollout, type HostResult } from '../../src/fleet/rollout.js';

const names = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];

test('rollout: canaries alone, then batches', () => {
  assert.deepEqual(groups(names, { canary: 1, batch: 1 }), [['a'], ['b'], ['c'], ['d'], ['e'], ['f'], ['g']]);
  assert.deepEqual(groups(names, { canary: 2, batch: 3 }), [['a'], ['b'], ['c', 'd', 'e'], ['f', 'g']]);
  assert.deepEqual(groups(names, { canary: 0, batch: 4 }), [
    ['a', 'b', 'c', 'd'],
    ['e', 'f', 'g'],
  ]);
  assert.deepEqual(groups(['a'], { canary: 5, batch: 2 }), [['a']]);
});

test('rollout: stops before the next batch once more than max-failures failed; a batch under way finishes', async () => {
  const asked: string[] = [];
  const failing = new Set(['b', 'd']);
  const deployOn = async (name: string): Promise<HostResult> => {
    asked.push(name);
    return failing.has(name) ? { name, result: 'failure', error: 'sick' } : { name, result: 'success' };
  };
  const r = await rollout(names, { canary: 1, batch: 3, maxFailures: 1 }, deployOn);
  // a; then b c d together (two fail: more than 1); e f g never asked.
  assert.deepEqual(asked.sort(), ['a', 'b', 'c', 'd']);
  assert.equal(r.stopped, true);
  assert.deepEqual(
    r.nodes.map((n) => n.result),
    ['success', 'failure', 'success', 'failure', 'skipped', 'skipped', 'skipped'],
  );
  asked.length = 0;
  const all = await rollout(names, { canary: 1, batch: 2, maxFailures: 5 }, deployOn);
  assert.equal(asked.length, 7);
  assert.equal(all.stopped, false);
  // The last host failing leaves nothing unasked: not "stopped".
  const last = await rollout(['a', 'b'], { canary: 1, batch: 1, maxFailures: 0 }, deployOn);
  assert.equal(last.stopped, false);
});

test('rollout: an answer that is not stretcher JSON is a failure saying what came', () => {
  assert.deepEqual(hostResult('a', '{"result":"success","checksum":"abc","release":"r1"}'), { name: 'a', result: 'success', checksum: 'abc', release: 'r1' });
  const odd = hostResult('a', 'sh: stretcher: not found');
  assert.equal(odd.result, 'failure');
  assert.match(odd.error ?? '', /not stretcher's: "sh: stretcher: not found"/);
  assert.equal(hostResult('a', '{"result":"maybe"}').result, 'failure');
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDuration } from '../../src/shared/duration.js';

test('durations: bare numbers are seconds, otherwise Go durations', () => {
  assert.equal(parseDuration('0', 'f'), 0);
  assert.equal(parseDuration('2.5', 'f'), 2500);
  assert.equal(parseDuration('.5', 'f'), 500);
  assert.equal(parseDuration('1h2m3s', 'f'), 3_723_000);
  assert.equal(parseDuration('250ms', 'f'), 250);
  assert.equal(parseDuration('1.5m', 'f'), 90_000);
  for (const bad of ['', 'abc', '10x', '-1', '1s2', 's']) assert.throws(() => parseDuration(bad, 'timeout'), /invalid duration .* --timeout/);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, parseBandwidth } from '../../src/shared/units.js';

test('bandwidth: humanize units, commas, and zero or unknown units rejected', () => {
  assert.equal(parseBandwidth('1,000', 'b'), 1000);
  assert.equal(parseBandwidth('1.5k', 'b'), 1500);
  assert.equal(parseBandwidth('10 MB', 'b'), 10_000_000);
  assert.equal(parseBandwidth('1KiB', 'b'), 1024);
  assert.equal(parseBandwidth('2g', 'b'), 2e9);
  assert.equal(parseBandwidth('100', 'b'), 100);
  assert.throws(() => parseBandwidth('0', 'max-bandwidth'), /greater than zero/);
  assert.throws(() => parseBandwidth('-5M', 'max-bandwidth'), /invalid size/);
  assert.throws(() => parseBandwidth('10XB', 'max-bandwidth'), /invalid size "10XB" for --max-bandwidth/);
});

test('sizes: limits that are whole binary units are said in them; other sizes in decimal units', () => {
  assert.equal(formatBytes(1024 * 1024), '1 MiB');
  assert.equal(formatBytes(64 * 1024 ** 3), '64 GiB');
  assert.equal(formatBytes(1_536_000), '1.54 MB');
  assert.equal(formatBytes(48_286_624), '48.3 MB');
  assert.equal(formatBytes(999), '999 B');
  assert.throws(() => parseBandwidth('abc', 'max-unpack-size', 'bytes'), /^UsageError: invalid size "abc" for --max-unpack-size: use bytes such as /);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capture } from '../helpers/log.js';
import { Progress } from '../../src/transfer/progress.js';

test('progress without a terminal: a line every 5 s of a long download, none for a short one', () => {
  const { log, text } = capture(false);
  let now = 0;
  const p = new Progress(log, 'downloading', 100_000_000, () => now);
  for (let i = 1; i <= 12; i++) {
    now = i * 1000;
    p.add(5_000_000);
  }
  const lines = text().trim().split('\n');
  assert.equal(lines.length, 2, text());
  assert.equal(lines[0], '2026-11-23T10:00:00.000Z downloading: 25.0 MB of 100 MB (25%), 5.00 MB/s, 15s left');
  assert.match(lines[1] as string, /downloading: 50\.0 MB of 100 MB \(50%\)/);
  assert.match(log.text(), /downloading: 25\.0 MB/, 'progress lines are part of the log commands receive');
});

test('progress on a terminal: one redrawn bar, erased before the next log line and kept out of the log', () => {
  const { log, text } = capture(true);
  let now = 0;
  const p = new Progress(log, 'downloading', 1000, () => now);
  now = 300;
  p.add(500);
  assert.match(text(), /\r\x1b\[Kdownloading \[#{12}\.{12}\] {2}50% 500 B of 1.00 kB/);
  log.info('next');
  assert.match(text(), /\r\x1b\[K2026-11-23T10:00:00\.000Z next\n$/);
  assert.doesNotMatch(log.text(), /\[#/);
});

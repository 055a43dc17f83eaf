import assert from 'node:assert/strict';
import { test } from 'node:test';
import { capture } from '../helpers/log.js';

test('json log lines carry time, level, msg and fields; secrets are scrubbed in both formats', () => {
  const { log, text } = capture(false, 'json');
  log.info('downloaded https://u:hunter2@h/a.tgz?X-Amz-Signature=abc', { bytes: 10, url: 'https://h/a?token=zzz' });
  log.warn('careful');
  const [first, second] = text()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(first, {
    time: '2026-11-23T10:00:00.000Z',
    level: 'info',
    msg: 'downloaded https://u:REDACTED@h/a.tgz?X-Amz-Signature=REDACTED',
    bytes: 10,
    url: 'https://h/a?token=REDACTED',
  });
  assert.equal(second?.level, 'warn');
  assert.doesNotMatch(log.text(), /hunter2|abc|zzz/);
  assert.match(log.text(), /^2026-11-23T10:00:00\.000Z downloaded https:\/\/u:REDACTED@h\/a\.tgz/, 'commands still get readable text');
});

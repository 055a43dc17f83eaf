import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { Log } from '../src/shared/log.js';
import { Progress } from '../src/transfer/progress.js';
import { Scenario } from './helpers/scenario.js';

function capture(tty: boolean, format: 'text' | 'json' = 'text'): { log: Log; text: () => string } {
  const out = new PassThrough() as PassThrough & { isTTY?: boolean };
  out.isTTY = tty;
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const log = new Log(format, out, () => new Date('2026-11-23T10:00:00.000Z'));
  return { log, text: () => text };
}

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
  assert.equal(lines[0], '2026-11-23T10:00:00.000Z downloading: 25.0 MB of 100 MB (25%), 5.00 MB/s, 15.0s left');
  assert.match(lines[1] as string, /downloading: 50\.0 MB of 100 MB \(50%\)/);
  assert.match(log.text(), /downloading: 25\.0 MB/, 'progress lines are part of the log commands receive');
});

test('progress on a terminal: one redrawn bar, erased before the next log line and kept out of the log', () => {
  const { log, text } = capture(true);
  let now = 0;
  const p = new Progress(log, 'downloading', 1000, () => now);
  now = 300;
  p.add(500);
  assert.match(text(), /\r\x1b\[Kdownloading \[#{12}\.{12}\]  50% 500 B of 1.00 kB/);
  log.info('next');
  assert.match(text(), /\r\x1b\[K2026-11-23T10:00:00\.000Z next\n$/);
  assert.doesNotMatch(log.text(), /\[#/);
});

test('json log lines carry time, level, msg and fields; secrets are scrubbed in both formats', () => {
  const { log, text } = capture(false, 'json');
  log.info('downloaded https://u:hunter2@h/a.tgz?X-Amz-Signature=abc', { bytes: 10, url: 'https://h/a?token=zzz' });
  log.warn('careful');
  const [first, second] = text().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
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

test('CLI: --log-format json writes only JSON lines on stderr', async (t) => {
  const s = new Scenario(t);
  s.manifest('commands:\n  pre: ["echo hello from pre"]\n');
  const r = await s.run(`${s.root}/manifest.yml`, { args: ['--log-format=json'] });
  assert.equal(r.code, 0, r.stderr);
  const records = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; source?: string });
  assert.ok(records.some((x) => x.msg === 'hello from pre' && x.source === 'pre'));
  assert.ok(records.some((x) => /deploy succeeded/.test(x.msg)));
});

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import { test } from 'node:test';
import { Location } from '../../src/shared/location.js';
import { downloadVerified } from '../../src/transfer/download.js';
import { Log } from '../../src/shared/log.js';
import { TestServer } from '../helpers/http.js';
import { sha256 } from '../helpers/tar.js';

function quietLog(): Log {
  return new Log('text', new PassThrough());
}

test('a slow --max-bandwidth is not mistaken for a stalled server (the watchdog counts what leaves the throttle)', async (t) => {
  const srv = await TestServer.start(t);
  const body = randomBytes(60_000);
  srv.file('/a.bin', body);
  let received = 0;
  const started = Date.now();
  await downloadVerified(
    Location.parse(srv.url('/a.bin')),
    { algorithm: 'sha256', hex: sha256(body) },
    {
      retry: 0,
      retryWaitMs: 0,
      timeoutMs: 30_000,
      // Far shorter than the time the throttle needs for one 60 kB socket read at 30 kB/s.
      stallMs: 300,
      maxBandwidth: 30_000,
      signal: new AbortController().signal,
      log: quietLog(),
      userAgent: 'test',
      env: {},
    },
    async () => ({
      sink: new Writable({
        write(chunk: Buffer, _enc, done) {
          received += chunk.length;
          done();
        },
      }),
      finish: async () => received,
    }),
  );
  assert.equal(received, body.length);
  assert.ok(Date.now() - started >= 1500, 'throttled to about 30 kB/s');
});

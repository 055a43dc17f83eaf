import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { DeployOutcome } from '../src/deploy.js';
import { StateStore } from '../src/host/state.js';
import { StretcherError } from '../src/shared/errors.js';
import { Location } from '../src/shared/location.js';
import { watch } from '../src/watch.js';
import { TestServer } from './helpers/http.js';
import { capture } from './helpers/log.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/wait.js';

// The loop itself, at intervals the CLI refuses (it has a 1 s floor), so that backoff is seen in a second.

async function startWatch(t: import('node:test').TestContext, url: string, deploy: () => Promise<DeployOutcome>) {
  const { log, text } = capture(false);
  const state = new StateStore(path.join(tempDir(t), 'state'), log);
  await state.open();
  const stop = new AbortController();
  const done = watch({
    url: Location.parse(url),
    intervalMs: 100,
    jitterMs: 0,
    log,
    signal: stop.signal,
    state,
    transfer: { retry: 0, retryWaitMs: 0, timeoutMs: 0, stallMs: 10_000, userAgent: 'test', signal: stop.signal, log, env: {} },
    deploy,
  });
  return {
    text,
    stop: async () => {
      stop.abort();
      await done;
    },
  };
}

test('watch: a failing deploy is retried with a growing backoff, capped at 10 intervals, never in a tight loop', async (t) => {
  const srv = await TestServer.start(t);
  srv.route('/m.yml', (_q, res) => res.end('commands:\n  pre: ["false"]\n'));
  let attempts = 0;
  const w = await startWatch(t, srv.url('/m.yml'), async () => {
    attempts++;
    return { ok: false, error: new StretcherError('COMMAND_FAILED', 'pre failed'), durationMs: 1 };
  });
  // Six attempts means five waits, however slow the machine; then the log says how long each was.
  await until(() => attempts >= 6, 'six attempts', 60_000);
  const before = attempts;
  await new Promise((r) => setTimeout(r, 500));
  await w.stop();
  assert.ok(attempts - before <= 1, 'at most one attempt in half a second once capped: never a tight loop');
  const waits = [...w.text().matchAll(/trying again in (\S+)/g)].map((m) => m[1]);
  assert.deepEqual(waits.slice(0, 5), ['200ms', '400ms', '800ms', '1s', '1s']);
  assert.match(w.text(), /retrying the deploy of \S+ \(failed 1 time\)/);
});

test('watch: polling errors are one line, and recovery is announced', async (t) => {
  const srv = await TestServer.start(t);
  let up = false;
  let deploys = 0;
  srv.route('/m.yml', (_q, res) => {
    if (!up) {
      res.writeHead(503);
      res.end();
      return;
    }
    res.end('commands:\n  pre: ["true"]\n');
  });
  const w = await startWatch(t, srv.url('/m.yml'), async () => {
    deploys++;
    return { ok: true, durationMs: 1 };
  });
  // Two failed polls at least, however slowly the watch starts on a loaded machine.
  await until(() => srv.hitsOf('/m.yml') >= 2, 'two failed polls');
  up = true;
  await until(() => deploys === 1, 'the deploy after recovery');
  await w.stop();
  assert.equal((w.text().match(/cannot poll/g) ?? []).length, 1, w.text());
  assert.match(w.text(), /polling \S+ works again after \d+ failed attempts?/);
});

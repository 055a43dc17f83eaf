import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/shared/errors.js';
import { parseArgs } from '../../src/cli/args.js';

test('every flag spelling Go stretcher ever accepted parses to the same option', () => {
  const cases: [string[], Partial<ReturnType<typeof parseArgs>>][] = [
    [['-retry', '3'], { retry: 3 }],
    [['--retry=3'], { retry: 3 }],
    [['--retry', '3'], { retry: 3 }],
    [['-retry=3'], { retry: 3 }],
    [['-max-bandwidth', '10M'], { maxBandwidth: 10_000_000 }],
    [['--max-band-width=10MB'], { maxBandwidth: 10_000_000 }],
    [['--max-bandwidth=10MiB'], { maxBandwidth: 10 * 1024 * 1024 }],
    [['-timeout', '30'], { timeoutMs: 30_000 }],
    [['--timeout=30s'], { timeoutMs: 30_000 }],
    [['--timeout=1m30s'], { timeoutMs: 90_000 }],
    [['-random-delay', '1.5'], { randomDelayMs: 1500 }],
    [['-random-delay=500ms'], { randomDelayMs: 500 }],
    [['-retry-wait', '10'], { retryWaitMs: 10_000 }],
    [['-rsync-verbose', ''], { rsyncVerbose: '' }],
    [['--rsync-verbose=-vv'], { rsyncVerbose: '-vv' }],
    [['-v'], { version: true }],
    [['-version'], { version: true }],
    [['--version'], { version: true }],
    [['-h'], { help: true }],
    [['--help'], { help: true }],
  ];
  for (const [argv, expected] of cases) {
    const opts = parseArgs(argv, {});
    for (const [k, v] of Object.entries(expected)) assert.deepEqual(opts[k as keyof typeof opts], v, `${argv.join(' ')} -> ${k}`);
  }
});

test('defaults match Go stretcher v1.1.0 (retry-wait 3s, rsync -v)', () => {
  const opts = parseArgs([], {});
  assert.equal(opts.retryWaitMs, 3000);
  assert.equal(opts.retry, 0);
  assert.equal(opts.timeoutMs, 0);
  assert.equal(opts.rsyncVerbose, '-v');
  assert.equal(opts.maxBandwidth, undefined);
  assert.equal(opts.stateDir, '/var/lib/stretcher');
  assert.equal(parseArgs([], { STRETCHER_STATE_DIR: '/x' }).stateDir, '/x');
});

test('usage errors name the flag', () => {
  assert.throws(
    () => parseArgs(['--retyr=3'], {}),
    (e: unknown) => e instanceof UsageError && /unknown flag --retyr/.test(e.message),
  );
  assert.throws(() => parseArgs(['-retry'], {}), /flag -retry needs a value/);
  assert.throws(() => parseArgs(['-retry', 'x'], {}), /invalid number "x" for --retry/);
  assert.throws(() => parseArgs(['--log-format=xml'], {}), /use text or json/);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBandwidth } from '../src/shared/units.js';
import { parseDuration } from '../src/shared/duration.js';
import { UsageError } from '../src/shared/errors.js';
import { parseArgs } from '../src/cli/args.js';
import { runStretcher } from './helpers/cli.js';

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

test('durations: bare numbers are seconds, otherwise Go durations', () => {
  assert.equal(parseDuration('0', 'f'), 0);
  assert.equal(parseDuration('2.5', 'f'), 2500);
  assert.equal(parseDuration('.5', 'f'), 500);
  assert.equal(parseDuration('1h2m3s', 'f'), 3_723_000);
  assert.equal(parseDuration('250ms', 'f'), 250);
  assert.equal(parseDuration('1.5m', 'f'), 90_000);
  for (const bad of ['', 'abc', '10x', '-1', '1s2', 's']) assert.throws(() => parseDuration(bad, 'timeout'), /invalid duration .* --timeout/);
});

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

test('usage errors name the flag', () => {
  assert.throws(() => parseArgs(['--retyr=3'], {}), (e: unknown) => e instanceof UsageError && /unknown flag --retyr/.test(e.message));
  assert.throws(() => parseArgs(['-retry'], {}), /flag -retry needs a value/);
  assert.throws(() => parseArgs(['-retry', 'x'], {}), /invalid number "x" for -retry/);
  assert.throws(() => parseArgs(['--log-format=xml'], {}), /use text or json/);
});

test('CLI: --version prints a dotted version on stdout; usage errors exit 2 with one line', async () => {
  for (const flag of ['-v', '-version', '--version']) {
    const r = await runStretcher({ args: [flag] });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /\d+\.\d+\.\d+/);
  }
  const help = await runStretcher({ args: ['--help'] });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--max-bandwidth, --max-band-width RATE/);
  assert.match(help.stdout, /--retry-wait D/);
  const bad = await runStretcher({ args: ['-retry', 'many'] });
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim().split('\n').length, 1);
  assert.match(bad.stderr, /-retry.*--help/);
  const unknownCmd = await runStretcher({ args: ['frobnicate'] });
  assert.equal(unknownCmd.code, 2);
  assert.match(unknownCmd.stderr, /unknown command "frobnicate"/);
});

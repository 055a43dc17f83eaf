import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { StretcherError } from '../../src/shared/errors.js';

/** Either a value or a StretcherError (our one-line errors); anything else is a bug. */
export function cleanly(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof StretcherError)) throw err;
    assert.ok(err.message.length > 0);
  }
}

export const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
export const env = { APP: 'web', EMPTY: '' };

export const templateish = fc
  .array(
    fc.oneof(
      fc.constantFrom('{{', '}}', '{{-', '-}}', ' env ', ' must_env ', ' json_escape ', '"APP"', '`EMPTY`', '"\\x4', '"\\u00e9"', '|', '(', ')', '"', '\\', '\n', ' '),
      fc.string({ maxLength: 8 }),
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(''));

export const manifestish = fc
  .record(
    {
      src: fc.oneof(fc.string(), fc.constantFrom('a.tgz', 's3://b/k', 'gs://x', '::', 'http://[bad')),
      checksum: fc.oneof(fc.string(), fc.stringMatching(/^[0-9a-fA-F]{30,130}$/), fc.integer()),
      dest: fc.oneof(fc.string(), fc.constantFrom('/', '/srv/app', 'rel', '/etc/../usr')),
      dest_mode: fc.oneof(fc.integer(), fc.string(), fc.constant(null)),
      sync_strategy: fc.oneof(fc.string(), fc.constantFrom('rsync', 'mv')),
      excludes: fc.oneof(fc.array(fc.string()), fc.string(), fc.array(fc.anything())),
      exclude_from: fc.oneof(fc.string(), fc.constantFrom('../x', '/abs')),
      commands: fc.oneof(fc.dictionary(fc.constantFrom('pre', 'post', 'success', 'failure', 'prre'), fc.oneof(fc.array(fc.string()), fc.string(), fc.anything())), fc.anything()),
      exclude: fc.anything(),
    },
    { requiredKeys: [] },
  )
  .map((m) => stringify(m));

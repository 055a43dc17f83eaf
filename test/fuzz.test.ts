import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { StretcherError } from '../src/shared/errors.js';
import { safeRelative } from '../src/unpack/entry-rules.js';
import { parseEvent } from '../src/event/parse.js';
import { manifestFromText } from '../src/manifest/load.js';
import { Location } from '../src/shared/location.js';
import { expandTemplate } from '../src/manifest/template.js';

/** Either a value or a StretcherError (our one-line errors); anything else is a bug. */
function cleanly(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof StretcherError)) throw err;
    assert.ok(err.message.length > 0);
  }
}

const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const env = { APP: 'web', EMPTY: '' };

const templateish = fc
  .array(
    fc.oneof(
      fc.constantFrom('{{', '}}', '{{-', '-}}', ' env ', ' must_env ', ' json_escape ', '"APP"', '`EMPTY`', '"\\x4', '"\\u00e9"', '|', '(', ')', '"', '\\', '\n', ' '),
      fc.string({ maxLength: 8 }),
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(''));

const manifestish = fc
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

test('event reader: arbitrary bytes, any mode, never an unexpected exception', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), fc.constantFrom({}, { CONSUL_INDEX: '1' }, { SERF_EVENT: 'user' }, { SERF_EVENT: 'member-join' }), (bytes, e) => {
      cleanly(() => parseEvent(Buffer.from(bytes), e));
    }),
    { numRuns: RUNS },
  );
});

test('event reader: arbitrary JSON as Consul events', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      cleanly(() => parseEvent(Buffer.from(JSON.stringify(value) ?? 'null'), { CONSUL_INDEX: '1' }));
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.array(fc.record({ ID: fc.string(), Payload: fc.oneof(fc.base64String(), fc.string(), fc.constant(null), fc.integer()) })), (events) => {
      cleanly(() => parseEvent(Buffer.from(JSON.stringify(events)), { CONSUL_INDEX: '1' }));
    }),
    { numRuns: RUNS },
  );
});

test('template expander: arbitrary text and template fragments, never an unexpected exception', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), templateish), (text) => {
      cleanly(() => expandTemplate(text, env));
    }),
    { numRuns: RUNS * 2 },
  );
});

test('template expander: text without our functions comes back unchanged', () => {
  fc.assert(
    fc.property(fc.string(), (text) => {
      fc.pre(!/\b(env|must_env|json_escape)\b/.test(text));
      assert.equal(expandTemplate(text, env), text);
    }),
    { numRuns: RUNS },
  );
});

test('manifest loader: arbitrary bytes, YAML of wrong shapes, template fragments', () => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b).toString('utf8')), manifestish, templateish), (text) => {
      cleanly(() => manifestFromText(text, Location.parse('file:///srv/m.yml'), env));
    }),
    { numRuns: RUNS },
  );
});

test('manifest loader: YAML bombs (aliases) and deep nesting end cleanly', () => {
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 12 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`)].join('\n');
  const m = Location.parse('file:///m.yml');
  cleanly(() => manifestFromText(bomb, m, env));
  cleanly(() => manifestFromText(`${'['.repeat(5000)}${']'.repeat(5000)}`, m, env));
  cleanly(() => manifestFromText(`commands:\n  pre:\n${'    - x\n'.repeat(20000)}`, m, env));
});

test('safeRelative: its fast path for plain paths agrees with splitting every path', () => {
  const slow = (p: string): string | undefined => {
    const parts: string[] = [];
    for (const part of p.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') return undefined;
      parts.push(part);
    }
    return parts.join('/');
  };
  const pathish = fc.array(fc.constantFrom('a', 'b.', '.', '..', '...', '.x', '/', '//', 'é'), { maxLength: 12 }).map((p) => p.join(''));
  fc.assert(fc.property(fc.oneof(pathish, fc.string()), (p) => assert.equal(safeRelative(p), slow(p))), { numRuns: RUNS * 5 });
});

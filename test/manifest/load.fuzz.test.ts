import { test } from 'node:test';
import fc from 'fast-check';
import { manifestFromText } from '../../src/manifest/load.js';
import { Location } from '../../src/shared/location.js';

import { cleanly, env, manifestish, RUNS, templateish } from '../helpers/fuzz.js';

test('manifest loader: arbitrary bytes, YAML of wrong shapes, template fragments', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b).toString('utf8')),
        manifestish,
        templateish,
      ),
      (text) => {
        cleanly(() => manifestFromText(text, Location.parse('file:///srv/m.yml'), env));
      },
    ),
    { numRuns: RUNS },
  );
});

test('manifest loader: YAML bombs (aliases) and deep nesting end cleanly', () => {
  const bomb = [
    'a: &a ["x","x","x","x","x","x","x","x","x"]',
    ...Array.from(
      { length: 12 },
      (_, i) =>
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`,
    ),
  ].join('\n');
  const m = Location.parse('file:///m.yml');
  cleanly(() => manifestFromText(bomb, m, env));
  cleanly(() => manifestFromText(`${'['.repeat(5000)}${']'.repeat(5000)}`, m, env));
  cleanly(() => manifestFromText(`commands:\n  pre:\n${'    - x\n'.repeat(20000)}`, m, env));
});

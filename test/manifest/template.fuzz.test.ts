import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { expandTemplate } from '../../src/manifest/template.js';

import { cleanly, env, RUNS, templateish } from '../helpers/fuzz.js';

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

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { safeRelative } from '../../src/unpack/entry-rules.js';

import { RUNS } from '../helpers/fuzz.js';

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
  fc.assert(
    fc.property(fc.oneof(pathish, fc.string()), (p) => assert.equal(safeRelative(p), slow(p))),
    { numRuns: RUNS * 5 },
  );
});

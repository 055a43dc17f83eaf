import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectFormat } from '../../src/unpack/format.js';
import { tar } from '../helpers/tar.js';

test('detectFormat: v7 tar without magic is recognised by its header checksum', () => {
  const ustar = tar([{ path: 'a' }]);
  const v7 = Buffer.from(ustar);
  v7.fill(0, 257, 265);
  let sum = 0;
  v7.write('        ', 148, 'latin1');
  for (let i = 0; i < 512; i++) sum += v7[i] as number;
  v7.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  assert.equal(detectFormat(v7), 'tar');
  assert.equal(detectFormat(Buffer.alloc(1024)), 'tar');
  assert.equal(detectFormat(Buffer.from('hello')), 'unknown');
});

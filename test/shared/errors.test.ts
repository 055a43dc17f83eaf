import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errorCode, errorMessage, StretcherError } from '../../src/shared/errors.js';

test('errorMessage: the message, then its causes, on one line; a system error keeps its code', () => {
  const system = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
  const err = new StretcherError('TRANSFER_FAILED', 'cannot fetch http://127.0.0.1:1/m.yml', { cause: system });
  assert.equal(errorMessage(err), 'cannot fetch http://127.0.0.1:1/m.yml: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1');
  assert.equal(err.cause, system, 'the original error is kept whole');
  assert.equal(errorCode(err), 'TRANSFER_FAILED');
  assert.equal(errorCode(system), undefined);
  // A library's error wrapping the system error with the same words is said once.
  const wrapped = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1', { cause: system }), { code: 'ECONNREFUSED' });
  assert.equal(errorMessage(new StretcherError('TRANSFER_FAILED', 'cannot fetch X', { cause: wrapped })), 'cannot fetch X: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1');
  // Node's fs errors already start with their code.
  const fsError = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  assert.equal(errorMessage(new StretcherError('UNPACK_FAILED', 'cannot unpack "a"', { cause: fsError })), 'cannot unpack "a": ENOSPC: no space left on device, write');
  assert.equal(errorMessage(new Error('line one\nline two')), 'line one | line two');
});

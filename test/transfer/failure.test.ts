import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StretcherError } from '../../src/shared/errors.js';
import { isRetryable, TransferError } from '../../src/transfer/failure.js';

test('isRetryable: the one rule for every source and the download loop', () => {
  const retried = (facts: ConstructorParameters<typeof TransferError>[1]) => isRetryable(new TransferError('x', facts));
  for (const status of [500, 502, 503, 504, 507, 429, 408]) assert.equal(retried({ stage: 'response', status }), true, `HTTP ${status}`);
  for (const status of [400, 401, 403, 404, 410, 416]) assert.equal(retried({ stage: 'response', status }), false, `HTTP ${status}`);
  for (const errno of ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN', undefined]) assert.equal(retried({ stage: 'connect', ...(errno ? { errno } : {}) }), true, String(errno));
  assert.equal(retried({ stage: 'connect', errno: 'ENOTFOUND' }), false, 'a host that does not exist');
  assert.equal(retried({ stage: 'connect', errno: 'ERR_TOO_MANY_REDIRECTS' }), false);
  assert.equal(retried({ stage: 'body' }), true, 'a body cut off, stalled or short');
  assert.equal(retried({ stage: 'local', errno: 'ENOSPC' }), false, 'a full disk');
  assert.equal(isRetryable(new StretcherError('CHECKSUM_MISMATCH', 'x')), false);
  assert.equal(isRetryable(new Error('x')), false);
});

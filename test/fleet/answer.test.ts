import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answerBudget, encodeDeployAnswer, encodeStatusAnswer, parseAnswer, SERF_RESPONSE_LIMIT, type StatusAnswer } from '../../src/fleet/answer.js';

const sha512 = 'ab'.repeat(64);

test('answers: a deploy answer that fits is untouched; a long error is cut to the budget, ending in "..."', () => {
  const small = { result: 'success' as const, dest: '/srv/app', checksum: sha512, release: '20261123T101500.512Z-abababababab' };
  assert.equal(encodeDeployAnswer(small, 900), JSON.stringify(small));
  const error = `pre command failed: "${'x'.repeat(3000)}" exited with status 1 ✓ "quoted" \\ \n`;
  const text = encodeDeployAnswer({ result: 'failure', dest: '/srv/app', error }, 900);
  assert.ok(Buffer.byteLength(text) <= 900, `${Buffer.byteLength(text)} bytes`);
  assert.ok(Buffer.byteLength(text) > 800, 'the room is used');
  const back = JSON.parse(text) as { error: string; dest: string };
  assert.equal(back.dest, '/srv/app');
  assert.ok(back.error.startsWith('pre command failed: "xxx') && back.error.endsWith('...'));
  // Nothing fits but the verdict.
  assert.equal(encodeDeployAnswer({ result: 'failure', dest: `/${'d'.repeat(2000)}` }, 100), '{"result":"failure"}');
});

test('answers: status answers shorten checksums, then leave out the last dests and count them', () => {
  const deploys = Array.from({ length: 20 }, (_, i) => ({ dest: `/srv/app-${String(i).padStart(2, '0')}`, result: 'success', checksum: sha512, time: '2026-11-23T10:15:00.512Z' }));
  const budget = answerBudget('web-01');
  assert.equal(budget, SERF_RESPONSE_LIMIT - 64 - 6);
  const text = encodeStatusAnswer(deploys, budget);
  assert.ok(Buffer.byteLength(text) <= budget);
  const back = JSON.parse(text) as StatusAnswer;
  assert.ok(back.deploys.length > 3 && back.deploys.length < 20, `${back.deploys.length} fit`);
  assert.equal(back.truncated, 20 - back.deploys.length);
  assert.equal(back.deploys[0]?.checksum, sha512.slice(0, 12));
  assert.equal(back.deploys[0]?.dest, '/srv/app-00', 'the first dests are kept, in order');
  const two = deploys.slice(0, 2);
  assert.deepEqual(JSON.parse(encodeStatusAnswer(two, budget)), { deploys: two }, 'full checksums when they fit');
});

test('answers: the last JSON line of a payload is the answer, after stray output', () => {
  assert.deepEqual(parseAnswer('warning: something\n{"result":"success"}\n'), { result: 'success' });
  assert.equal(parseAnswer('no json here'), undefined);
  assert.equal(parseAnswer('{"cut'), undefined);
});

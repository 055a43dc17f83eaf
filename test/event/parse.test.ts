import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseEvent } from '../../src/event/parse.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const consul = (events: unknown[]): Buffer => Buffer.from(JSON.stringify(events));

test('raw stdin: the first non-empty line, trimmed (CRLF, spaces, no trailing newline)', () => {
  for (const input of ['s3://b/m.yml\n', 's3://b/m.yml', '  s3://b/m.yml \r\n', '\n\n  s3://b/m.yml\nignored\n']) {
    assert.deepEqual(parseEvent(Buffer.from(input), {}), { kind: 'deploy', url: 's3://b/m.yml', origin: 'stdin' });
  }
  assert.throws(() => parseEvent(Buffer.from('\n  \n'), {}), /no manifest URL on stdin/);
});

test('consul: the last event wins, payload base64-decoded and trimmed, keys case-insensitive', () => {
  const r = parseEvent(
    consul([
      { ID: 'a', Name: 'deploy', Payload: b64('s3://b/old.yml'), LTime: 1 },
      { id: 'b', name: 'deploy', payload: b64('  s3://b/new.yml\n'), ltime: 2 },
    ]),
    { CONSUL_INDEX: '7' },
  );
  assert.deepEqual(r, { kind: 'deploy', url: 's3://b/new.yml', origin: 'consul', eventId: 'b', eventName: 'deploy' });
});

test('consul mode is chosen by CONSUL_INDEX or by a leading "[" after whitespace', () => {
  const body = consul([{ ID: 'x', Payload: b64('file:///m.yml') }]);
  assert.equal(parseEvent(Buffer.concat([Buffer.from(' \n'), body]), {}).kind, 'deploy');
  assert.throws(() => parseEvent(Buffer.from('file:///m.yml'), { CONSUL_INDEX: '3' }), /invalid Consul event JSON/);
});

test('consul: [] is "nothing to do"; null payload, bad base64, non-arrays are clear errors', () => {
  assert.deepEqual(parseEvent(Buffer.from('[]'), { CONSUL_INDEX: '1' }), {
    kind: 'nothing',
    reason: 'No Consul events found: nothing to do',
    origin: 'consul',
  });
  assert.throws(() => parseEvent(consul([{ ID: 'e1', Name: 'deploy', Payload: null }]), {}), /Consul event "deploy" \(ID e1\) has no payload/);
  assert.throws(() => parseEvent(consul([{ ID: 'e1', Payload: '%%%' }]), {}), /not valid base64/);
  assert.throws(() => parseEvent(consul([{ ID: 'e1', Payload: 5 }]), {}), /not a base64 string/);
  assert.throws(() => parseEvent(Buffer.from('[1, 2'), {}), /invalid Consul event JSON/);
  assert.throws(() => parseEvent(consul(['x']), {}), /not an event object/);
  assert.throws(() => parseEvent(Buffer.from('{"a":1}'), { CONSUL_INDEX: '1' }), /expected an array/);
  assert.throws(() => parseEvent(consul([{ Payload: b64('a\nb') }]), {}), /not a single URL/);
});

test('serf: user events carry the URL; other serf events are ignored', () => {
  const env = { SERF_EVENT: 'user', SERF_USER_EVENT: 'deploy', SERF_SELF_NAME: 'web1' };
  assert.deepEqual(parseEvent(Buffer.from('s3://b/m.yml\n'), env), { kind: 'deploy', url: 's3://b/m.yml', origin: 'serf', eventName: 'deploy' });
  assert.throws(() => parseEvent(Buffer.from(''), env), /serf user event "deploy" has an empty payload/);
  const join = parseEvent(Buffer.from('web2\t127.0.0.2\t\trole=web\n'), { SERF_EVENT: 'member-join' });
  assert.deepEqual(join, { kind: 'nothing', reason: 'ignoring serf member-join event', origin: 'serf' });
});

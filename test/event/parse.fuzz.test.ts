import { test } from 'node:test';
import fc from 'fast-check';
import { parseEvent } from '../../src/event/parse.js';

import { cleanly, RUNS } from '../helpers/fuzz.js';

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

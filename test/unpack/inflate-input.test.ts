import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createGunzip, gzipSync } from 'node:zlib';
import { BLOCK_BYTES, InflateInput } from '../../src/unpack/inflate-input.js';

/** A stream that takes `msPerWrite` per write and records what it was given, copied. */
function slowSink(msPerWrite: number): { sink: Writable; got: Buffer[] } {
  const got: Buffer[] = [];
  let timer: NodeJS.Timeout | undefined;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      got.push(Buffer.from(chunk));
      timer = setTimeout(done, msPerWrite);
    },
    // A destroyed sink's pending write would otherwise keep the test process alive for msPerWrite.
    destroy(err, done) {
      clearTimeout(timer);
      done(err);
    },
  });
  return { sink, got };
}

async function feedAll(input: InflateInput, data: Buffer, chunkBytes: number): Promise<void> {
  for (let i = 0; i < data.length; i += chunkBytes) await input.write(data.subarray(i, i + chunkBytes));
  input.flush();
}

test('InflateInput passes every byte on, in order, in blocks it reuses only once they are consumed', async () => {
  // Enough blocks that each is reused more than once.
  const data = randomBytes(6 * BLOCK_BYTES + 12345);
  const { sink, got } = slowSink(2);
  const input = new InflateInput(sink);
  // Odd chunk sizes, so that chunks straddle blocks.
  await feedAll(input, data, 65_531);
  await new Promise<void>((resolve) => sink.end(resolve));
  // A block overwritten before the sink consumed it would show up here as corrupted data.
  assert.ok(Buffer.concat(got).equals(data));
  assert.equal(got.length, 7, 'one write per full block, and one for the rest');
});

test('InflateInput feeds gunzip so that the archive inflates exactly', async () => {
  const plain = Buffer.concat([randomBytes(700_000), Buffer.alloc(2_000_000, 7)]);
  const gunzip = createGunzip({ chunkSize: 512 * 1024 });
  const out: Buffer[] = [];
  gunzip.on('data', (c: Buffer) => out.push(c));
  const ended = new Promise((resolve) => gunzip.on('end', resolve));
  const input = new InflateInput(gunzip);
  await feedAll(input, gzipSync(plain), 16_384);
  gunzip.end();
  await ended;
  assert.ok(Buffer.concat(out).equals(plain));
});

test('InflateInput stops waiting, and takes no more, once inflating fails', { timeout: 10_000 }, async () => {
  const { sink } = slowSink(60_000);
  const input = new InflateInput(sink);
  const big = randomBytes(3 * BLOCK_BYTES);
  const pending = input.write(big);
  assert.ok(pending, 'both blocks are in flight: it must wait');
  sink.destroy(new Error('corrupt'));
  sink.on('error', () => {});
  await pending;
  assert.equal(input.write(big), undefined);
});

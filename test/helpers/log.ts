import { PassThrough } from 'node:stream';
import { Log } from '../../src/shared/log.js';

/** A Log writing to a captured stream at a fixed time, as a terminal (tty) or not. */
export function capture(tty: boolean, format: 'text' | 'json' = 'text'): { log: Log; text: () => string } {
  const out = new PassThrough() as PassThrough & { isTTY?: boolean };
  out.isTTY = tty;
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const log = new Log(format, out, () => new Date('2026-11-23T10:00:00.000Z'));
  return { log, text: () => text };
}

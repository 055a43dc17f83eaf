import { StretcherError } from '../shared/errors.js';
import { MAX_EVENT_BYTES } from './parse.js';

/**
 * Reads stdin up to MAX_EVENT_BYTES. A raw URL needs only its first non-empty line, so reading stops there
 * (an ssh session may keep stdin open); Consul's JSON is read to the end.
 */
export async function readStdin(input: NodeJS.ReadableStream, env: NodeJS.ProcessEnv): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of input) {
    const buf = chunk as Buffer;
    chunks.push(buf);
    size += buf.length;
    if (size > MAX_EVENT_BYTES) throw new StretcherError('EVENT_INVALID', `stdin is larger than ${MAX_EVENT_BYTES} bytes: that is not an event`);
    const text = Buffer.concat(chunks).toString('utf8');
    const json = env.CONSUL_INDEX || text.trimStart().startsWith('[');
    if (!json && /\S[^\n]*\n/.test(text)) break;
  }
  return Buffer.concat(chunks);
}

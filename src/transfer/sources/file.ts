import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { StretcherError } from '../../shared/errors.js';
import type { Opener } from './types.js';

/** Like Go stretcher, only the path part of a file:// URL counts. */
export const openFile: Opener = async (url, { conditional }) => {
  const path = decodeURIComponent(url.pathname);
  let size: number;
  let mtimeMs: number;
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new StretcherError(`${path} is a directory, not a file`);
    size = st.size;
    mtimeMs = st.mtimeMs;
  } catch (err) {
    if (err instanceof StretcherError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new StretcherError(`no such file: ${path}`);
    if (code === 'EACCES') throw new StretcherError(`permission denied reading ${path}`);
    throw new StretcherError(`cannot read ${path}: ${(err as Error).message}`);
  }
  const validators = { mtimeMs, size };
  if (conditional?.mtimeMs === mtimeMs && conditional.size === size) return { body: Readable.from([]), notModified: true, validators };
  return { body: createReadStream(path), size, validators };
};

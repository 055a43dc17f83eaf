import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { StretcherError } from '../errors.js';
import type { Opener } from './types.js';

/** Like Go stretcher, only the path part of a file:// URL counts. */
export const openFile: Opener = async (url) => {
  const path = decodeURIComponent(url.pathname);
  let size: number;
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new StretcherError(`${path} is a directory, not a file`);
    size = st.size;
  } catch (err) {
    if (err instanceof StretcherError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new StretcherError(`no such file: ${path}`);
    if (code === 'EACCES') throw new StretcherError(`permission denied reading ${path}`);
    throw new StretcherError(`cannot read ${path}: ${(err as Error).message}`);
  }
  return { body: createReadStream(path), size };
};

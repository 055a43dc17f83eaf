import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { TransferError } from '../failure.js';
import type { Opener } from './types.js';

/** Like Go stretcher, only the path part of a file:// URL counts. */
export const openFile: Opener = async (location, { conditional }) => {
  const path = decodeURIComponent(location.url.pathname);
  let size: number;
  let mtimeMs: number;
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new TransferError(`${path} is a directory, not a file`, { stage: 'local' });
    // A FIFO or a device (/dev/zero, /dev/stdin) would be read for ever, or block: only files are sources.
    if (!st.isFile()) throw new TransferError(`${path} is not a regular file`, { stage: 'local' });
    size = st.size;
    mtimeMs = st.mtimeMs;
  } catch (err) {
    if (err instanceof TransferError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new TransferError(`no such file: ${path}`, { stage: 'local' });
    if (code === 'EACCES') throw new TransferError(`permission denied reading ${path}`, { stage: 'local' });
    throw new TransferError(`cannot read ${path}`, { stage: 'local' }, { cause: err });
  }
  const validators = { mtimeMs, size };
  if (conditional?.mtimeMs === mtimeMs && conditional.size === size) return { body: Readable.from([]), notModified: true, validators };
  return { body: createReadStream(path), size, validators };
};

import { parentPort } from 'node:worker_threads';
import { closeQuietly, completeEntryFile, createEntryFile, EntryConflictError, writeChunks, type FileEntry } from './file.js';
import type { Piece, WriterBatch, WriterError, WriterReply } from './pool.js';

/** A writer thread (writer-pool.ts): writes the files it is sent and hands each batch's buffer back. */
const open = new Map<number, { fd: number; entry: FileEntry }>();
// Files whose first piece failed: their later pieces are dropped.
const failed = new Set<number>();
// Time spent creating files in the current batch (writer-pool.ts: msPerCreate).
let createMs = 0;

parentPort?.on('message', (batch: WriterBatch) => {
  const errors: WriterError[] = [];
  if (batch.abandon) {
    for (const { fd } of open.values()) closeQuietly(fd);
    open.clear();
    failed.clear();
  }
  for (const piece of batch.pieces) {
    const error = write(piece, new Uint8Array(batch.buffer, piece.offset, piece.length));
    if (error) errors.push(error);
  }
  const files = batch.pieces.reduce((n, p) => n + (p.entry ? 1 : 0), 0);
  const reply: WriterReply = { buffer: batch.buffer, files, createMs, errors };
  createMs = 0;
  parentPort?.postMessage(reply, [batch.buffer]);
});

function write(piece: Piece, bytes: Uint8Array): WriterError | undefined {
  let file = open.get(piece.id);
  try {
    if (failed.has(piece.id)) {
      if (piece.last) failed.delete(piece.id);
      return undefined;
    }
    if (piece.entry) {
      const started = performance.now();
      file = { fd: createEntryFile(piece.entry), entry: piece.entry };
      createMs += performance.now() - started;
      open.set(piece.id, file);
    }
    if (!file) throw new Error(`no open file for piece ${piece.id}`);
    writeChunks(file.fd, [bytes]);
    if (piece.last) {
      open.delete(piece.id);
      completeEntryFile(file.fd, file.entry);
    }
    return undefined;
  } catch (err) {
    if (file && open.delete(piece.id)) closeQuietly(file.fd);
    if (!piece.last) failed.add(piece.id);
    return { rel: piece.entry?.rel ?? file?.entry.rel ?? '', message: (err as Error).message, conflict: err instanceof EntryConflictError };
  }
}

import { parentPort, workerData } from 'node:worker_threads';
import { type KeptFile, packKept } from '../../shared/kept.js';
import { type CounterpartPolicy, Counterparts, StagedFile } from './counterpart.js';
import { EntryConflictError } from './file.js';
import type { Piece, WriterBatch, WriterError, WriterReply } from './pool.js';

/** A writer thread (pool.ts): writes the files it is sent and hands each batch's buffer back. */
const policy = (workerData as { counterpart?: CounterpartPolicy } | undefined)?.counterpart;
const counterparts = policy ? new Counterparts(policy) : undefined;
const open = new Map<number, StagedFile>();
// Files whose first piece failed: their later pieces are dropped.
const failed = new Set<number>();
// Time spent creating (or comparing the start of) files in the current batch (pool.ts: msPerCreate).
let createMs = 0;

parentPort?.on('message', (batch: WriterBatch) => {
  const errors: WriterError[] = [];
  const kept: KeptFile[] = [];
  if (batch.abandon) {
    for (const file of open.values()) file.abandon();
    open.clear();
    failed.clear();
  }
  for (const piece of batch.pieces) {
    const error = write(piece, new Uint8Array(batch.buffer, piece.offset, piece.length), kept);
    if (error) errors.push(error);
  }
  const files = batch.pieces.reduce((n, p) => n + (p.entry ? 1 : 0), 0);
  const packed = packKept(kept);
  const reply: WriterReply = { buffer: batch.buffer, files, createMs, errors, kept: packed };
  createMs = 0;
  parentPort?.postMessage(reply, [batch.buffer, packed.nums.buffer as ArrayBuffer]);
});

function write(piece: Piece, bytes: Uint8Array, kept: KeptFile[]): WriterError | undefined {
  let file = open.get(piece.id);
  try {
    if (failed.has(piece.id)) {
      if (piece.last) failed.delete(piece.id);
      return undefined;
    }
    if (piece.entry) {
      const started = performance.now();
      file = new StagedFile(piece.entry, counterparts);
      createMs += performance.now() - started;
      open.set(piece.id, file);
    }
    if (!file) throw new Error(`no open file for piece ${piece.id}`);
    file.write(bytes);
    if (piece.last) {
      open.delete(piece.id);
      const same = file.end();
      if (same) kept.push(same);
    }
    return undefined;
  } catch (err) {
    // Closes only what is still open: a descriptor closed twice could be another thread's by then.
    file?.abandon();
    open.delete(piece.id);
    if (!piece.last) failed.add(piece.id);
    return { rel: piece.entry?.rel ?? file?.entry.rel ?? '', message: (err as Error).message, conflict: err instanceof EntryConflictError };
  }
}

import { Worker, type WorkerOptions } from 'node:worker_threads';
import { KeptFiles, type PackedKept } from '../../shared/kept.js';
import type { CounterpartPolicy } from './counterpart.js';
import type { FileEntry } from './file.js';

/** One piece of one file inside a batch's buffer. The first piece of a file carries its entry and opens it. */
export interface Piece {
  id: number;
  entry?: FileEntry;
  offset: number;
  length: number;
  last: boolean;
}

/** Main thread to writer thread: pieces of several files, their bytes in one transferred buffer. */
export interface WriterBatch {
  pieces: Piece[];
  buffer: ArrayBuffer;
  bytes: number;
  /** Close every file still open: the archive ended inside them, and the threads are about to stop. */
  abandon?: true;
}

export interface WriterError {
  rel: string;
  message: string;
  conflict: boolean;
}

/** Writer thread to main thread: the batch is written, and its buffer comes back to be used again. */
export interface WriterReply {
  buffer: ArrayBuffer;
  /** How many files the batch created, and how long creating them took (open(), not writing their data). */
  files: number;
  createMs: number;
  errors: WriterError[];
  /** Files of the batch that dest already has, byte for byte: not written (counterpart.ts). */
  kept: PackedKept;
}

/**
 * The writer thread's bundled source, compiled into the one-file executable (scripts/build-exe.mjs): a
 * single executable application has no file beside it to start a thread from.
 */
declare const STRETCHER_EMBEDDED_WORKER: string | undefined;

/**
 * A writer thread: in the executable, its embedded source; from dist/, unpack-worker.js beside the bundle;
 * run from src/ (the unit tests, through tsx), the TypeScript source beside this file.
 */
function startWorker(options: WorkerOptions): Worker {
  if (typeof STRETCHER_EMBEDDED_WORKER === 'string') return new Worker(STRETCHER_EMBEDDED_WORKER, { ...options, eval: true });
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./unpack-worker.js', import.meta.url), options);
  // A thread does not inherit tsx's loader hooks: it registers them before loading the source.
  const source = JSON.stringify(new URL('./worker.ts', import.meta.url).href);
  return new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${source}); })`, { ...options, eval: true });
}

/** A batch's buffer; a large file is split across batches. */
export const BATCH_BYTES = 256 * 1024;

/**
 * Threads that create and write archive files while the main thread inflates and parses, started only
 * once the caller has seen that creating files is slow (tar/unpacker.ts): one, and a second when the first
 * falls behind. On a journal-less ext4 after many deletions a file's creation can cost ~0.7 ms of kernel
 * CPU (perf: ext4_create), which GNU tar and a single thread pay one after another. libuv's pool was
 * measured too and did not gain: its four threads interleave one file's syscalls with another's and contend
 * in the kernel.
 *
 * A path always goes to the same thread, so a later entry for it is written after the earlier one. Bytes
 * travel in 256 KiB buffers that are transferred to a thread and back, and reused: a buffer per file would
 * pile up as external memory in each thread until its next GC (+70 MB peak RSS, measured).
 */
export class WriterPool {
  private readonly workers: Worker[] = [];
  private readonly pending: number[] = [];
  private readonly batches: (WriterBatch | undefined)[] = [];
  private readonly spare: ArrayBuffer[] = [];
  private inflight = 0;
  private filesWritten = 0;
  private createMs = 0;
  private waiters: { below: number; resolve: () => void }[] = [];
  private failure: WriterError | undefined;
  private closed = false;
  /**
   * Starts with one thread; grow() adds more, up to `maxThreads`. `counterpart`: compare with dest's files,
   * and add to `kept` those dest already has, in the order the threads report them.
   */
  constructor(
    private readonly maxThreads: number,
    private readonly counterpart?: CounterpartPolicy,
    private readonly kept = new KeptFiles(),
  ) {
    this.spawn();
  }

  get canGrow(): boolean {
    return this.workers.length < this.maxThreads && !this.closed;
  }

  /**
   * Adds a thread once every queued piece is written: paths are routed by the number of threads, so the
   * change must not let a later entry for a path overtake an earlier one still queued on another thread.
   */
  async grow(): Promise<void> {
    await this.idle();
    if (this.canGrow) this.spawn();
  }

  private spawn(): void {
    const i = this.workers.length;
    this.pending.push(0);
    this.batches.push(undefined);
    const worker = startWorker({
      resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 32 },
      ...(this.counterpart ? { workerData: { counterpart: this.counterpart } } : {}),
    });
    worker.on('message', (reply: WriterReply) => {
      this.pending[i] = (this.pending[i] ?? 1) - 1;
      this.inflight -= reply.buffer.byteLength;
      this.filesWritten += reply.files;
      this.createMs += reply.createMs;
      this.spare.push(reply.buffer);
      this.failure ??= reply.errors[0];
      this.kept.addPacked(reply.kept);
      this.wake();
    });
    const died = (why: string): void => {
      if (this.closed) return;
      this.failure ??= { rel: '', message: `an archive writer thread ${why}`, conflict: false };
      this.pending[i] = 0;
      this.wake();
    };
    worker.on('error', (err) => died(`failed: ${err.message}`));
    worker.on('exit', (code) => died(`exited with code ${code}`));
    this.workers.push(worker);
  }

  /** The first error a thread reported; the pool keeps accepting work so that it can be drained. */
  get error(): WriterError | undefined {
    return this.failure;
  }

  /**
   * What creating a file has cost so far, on average, once enough have been created to tell. Creation alone:
   * that is what a second thread can share when the kernel is slow at it (journal-less ext4 after deletions).
   * Writing the data is not counted: when writes are slow (a big file's many pages, dirty pages throttled
   * during heavy writeback) a second thread only waits too, and costs 6 to 9 MB of memory (measured).
   */
  get msPerCreate(): number | undefined {
    return this.filesWritten >= 256 ? this.createMs / this.filesWritten : undefined;
  }

  /** Memory held by batches sent and not yet written. */
  get bytesInFlight(): number {
    return this.inflight;
  }

  /** The thread that owns `rel` (FNV-1a of the path). */
  route(rel: string): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < rel.length; i++) h = Math.imul(h ^ rel.charCodeAt(i), 0x01000193);
    return (h >>> 0) % this.workers.length;
  }

  /**
   * Queues a piece of file `id` for `thread`, copying `chunks` (at most BATCH_BYTES in all) into the
   * thread's current batch. Nothing is sent until flush().
   */
  add(thread: number, id: number, entry: FileEntry | undefined, chunks: readonly Uint8Array[], length: number, last: boolean): void {
    let batch = this.batches[thread];
    if (batch && batch.bytes + length > BATCH_BYTES) {
      this.send(thread, batch);
      batch = undefined;
    }
    batch ??= this.batches[thread] = { pieces: [], buffer: this.spare.pop() ?? new ArrayBuffer(BATCH_BYTES), bytes: 0 };
    const view = new Uint8Array(batch.buffer);
    let offset = batch.bytes;
    for (const chunk of chunks) {
      view.set(chunk, offset);
      offset += chunk.length;
    }
    batch.pieces.push({ id, ...(entry ? { entry } : {}), offset: batch.bytes, length, last });
    batch.bytes += length;
  }

  /**
   * Sends the batches worth sending, called after each chunk of input: a batch a quarter full, or any batch
   * for a thread that has nothing left to write. Fewer, fuller messages: each post costs the main thread
   * time it needs for parsing.
   */
  flush(all = false): void {
    this.batches.forEach((batch, thread) => {
      if (batch && (all || batch.bytes >= BATCH_BYTES / 4 || this.pending[thread] === 0)) this.send(thread, batch);
    });
  }

  /** Resolves once fewer than `bytes` are waiting to be written. */
  async below(bytes: number): Promise<void> {
    if (this.inflight < bytes || this.idleNow()) return;
    await new Promise<void>((resolve) => this.waiters.push({ below: bytes, resolve }));
  }

  /** Resolves once every piece queued so far is written (or its thread is gone). */
  async idle(): Promise<void> {
    this.flush(true);
    await this.below(0);
  }

  /** Stops the threads; a write in progress completes first, so nothing is created after this resolves. */
  async close(): Promise<void> {
    if (this.closed) return;
    // Threads share the process's descriptors: a file left open by a truncated archive would outlive them.
    this.flush(true);
    for (const thread of this.workers.keys()) this.send(thread, { pieces: [], buffer: this.spare.pop() ?? new ArrayBuffer(0), bytes: 0, abandon: true });
    await this.below(0);
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.wake(true);
  }

  private send(thread: number, batch: WriterBatch): void {
    if (this.batches[thread] === batch) this.batches[thread] = undefined;
    const worker = this.workers[thread];
    if (!worker || this.closed) return;
    this.pending[thread] = (this.pending[thread] ?? 0) + 1;
    this.inflight += batch.buffer.byteLength;
    worker.postMessage(batch, [batch.buffer]);
  }

  private idleNow(): boolean {
    return this.closed || this.pending.every((n) => n <= 0);
  }

  private wake(all = false): void {
    const idle = this.idleNow();
    const ready = this.waiters.filter((w) => all || idle || this.inflight < w.below);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const w of ready) w.resolve();
  }
}

import type { Writable } from 'node:stream';

/** How many bytes of compressed input go to gunzip per write. */
export const BLOCK_BYTES = 1024 * 1024;
/** Blocks written and not yet inflated: one being inflated, one queued so that zlib never waits for us. */
const IN_FLIGHT = 2;

/**
 * Gathers the download's chunks (64 KiB from a socket) into fewer, larger writes to gunzip. Each write is a
 * round trip to libuv's pool and back, and on two busy cores every wake-up costs, so 1 MiB blocks beat
 * smaller ones (bench/RESULTS.md). The blocks are reused once zlib has consumed them, so gathering adds no
 * garbage for the GC to find.
 */
export class InflateInput {
  private block: Buffer | undefined;
  private filled = 0;
  private readonly spare: Buffer[] = [];
  private inFlight = 0;
  private waiting: (() => void) | undefined;

  constructor(private readonly inflate: Writable) {}

  /** Takes a chunk; the promise, if any, says when to send the next one. */
  write(chunk: Buffer): Promise<void> | undefined {
    // Inflating failed or was stopped: the error is reported elsewhere, and the rest is not needed.
    if (this.inflate.destroyed) return undefined;
    let offset = 0;
    while (offset < chunk.length) {
      // A block can be filled only once one is free: wait for zlib.
      if (!this.block && this.spare.length === 0 && this.inFlight >= IN_FLIGHT) return this.free().then(() => this.write(chunk.subarray(offset)));
      this.block ??= this.spare.pop() ?? Buffer.allocUnsafeSlow(BLOCK_BYTES);
      const copied = chunk.copy(this.block, this.filled, offset);
      this.filled += copied;
      offset += copied;
      if (this.filled === BLOCK_BYTES) this.send();
    }
    return undefined;
  }

  /** Sends what is gathered: at the end of the archive. */
  flush(): void {
    if (this.filled > 0) this.send();
  }

  private send(): void {
    const block = this.block as Buffer;
    const length = this.filled;
    this.block = undefined;
    this.filled = 0;
    if (this.inflate.destroyed) return;
    this.inFlight++;
    // The callback runs once zlib has inflated the whole block (or failed): it is free again then.
    this.inflate.write(block.subarray(0, length), () => {
      this.inFlight--;
      this.spare.push(block);
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.();
    });
  }

  private free(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.inflate.off('close', done);
        resolve();
      };
      this.waiting = done;
      // A destroyed stream may never call back: stop waiting when it closes.
      this.inflate.once('close', done);
    });
  }
}

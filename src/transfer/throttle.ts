import { Transform, type TransformCallback } from 'node:stream';

/**
 * A token bucket over a byte stream. throttle@1.0.3 (2013, unmaintained) works, but this is smaller than
 * its dependency tree and is exact about bursts: at most `rate / 10` bytes pass ahead of schedule, so a
 * deploy on a busy host never takes the whole link even for a moment.
 */
export class Throttle extends Transform {
  private readonly burst: number;
  private tokens: number;
  private last = performance.now();

  constructor(private readonly rate: number) {
    super();
    this.burst = Math.max(1024, Math.floor(rate / 10));
    this.tokens = this.burst;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.sendFrom(chunk, 0, done);
  }

  private sendFrom(chunk: Buffer, offset: number, done: TransformCallback): void {
    if (this.destroyed) return done();
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens >= 1) {
      const n = Math.min(chunk.length - offset, Math.floor(this.tokens));
      this.tokens -= n;
      this.push(chunk.subarray(offset, offset + n));
      offset += n;
      if (offset >= chunk.length) return done();
    }
    const waitMs = Math.max(1, ((Math.min(this.burst, chunk.length - offset) - this.tokens) / this.rate) * 1000);
    setTimeout(() => this.sendFrom(chunk, offset, done), waitMs);
  }
}

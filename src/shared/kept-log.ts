/**
 * The copy of the log kept for success/failure commands and `status --log`: the whole log up to a cap,
 * and past it the head (how the deploy started) and the tail (how it ended), with one line saying how
 * much of the middle was dropped. Each line costs constant time: the tail is a queue whose front is an
 * index, not an array shifted on every line.
 */
export class KeptLog {
  private readonly head: string[] = [];
  private headBytes = 0;
  private tail: string[] = [];
  /** Index of the tail's first live line; lines before it were dropped. */
  private front = 0;
  private tailBytes = 0;
  private droppedLines = 0;
  private droppedBytes = 0;

  constructor(
    private readonly headCap: number = HEAD_BYTES,
    private readonly tailCap: number = TAIL_BYTES,
  ) {}

  push(line: string): void {
    const bytes = Buffer.byteLength(line) + 1;
    if (this.tail.length === 0 && this.headBytes + bytes <= this.headCap) {
      this.head.push(line);
      this.headBytes += bytes;
      return;
    }
    this.tail.push(line);
    this.tailBytes += bytes;
    // One line bigger than the whole tail is still kept: the newest line is never the one dropped.
    while (this.tailBytes > this.tailCap && this.tail.length - this.front > 1) {
      const gone = Buffer.byteLength(this.tail[this.front] as string) + 1;
      this.tail[this.front++] = '';
      this.tailBytes -= gone;
      this.droppedLines++;
      this.droppedBytes += gone;
    }
    // Compacting when half the array is dead keeps every push amortised O(1).
    if (this.front > 1024 && this.front * 2 > this.tail.length) {
      this.tail = this.tail.slice(this.front);
      this.front = 0;
    }
  }

  text(): string {
    const lines = [...this.head];
    if (this.droppedLines)
      lines.push(`... ${this.droppedLines} log lines (${this.droppedBytes} bytes) dropped here: the kept log is capped at its first ${mib(this.headCap)} and last ${mib(this.tailCap)} ...`);
    for (let i = this.front; i < this.tail.length; i++) lines.push(this.tail[i] as string);
    return lines.length ? `${lines.join('\n')}\n` : '';
  }
}

/** The first 1 MiB and the last 7 MiB: the cap the README documents. */
const HEAD_BYTES = 1024 * 1024;
const TAIL_BYTES = 7 * 1024 * 1024;

function mib(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

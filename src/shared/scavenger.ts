import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Collect = (options: { type: 'minor' | 'major' }) => void;

let collect: Collect | null | undefined;

/**
 * V8's gc(), without --expose-gc on the command line (which a `stretcher` binary cannot pass to node): the
 * flag is set just long enough to make one new context, whose global has gc(), and unset again, so neither
 * our context nor later ones get a global gc(). Null where V8 refuses.
 */
function collector(): Collect | null {
  if (collect !== undefined) return collect;
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === 'function') {
    collect = own as Collect;
    return collect;
  }
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    collect = typeof gc === 'function' ? (gc as Collect) : null;
  } catch {
    collect = null;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  return collect;
}

/**
 * Runs a minor GC (a scavenge, ~0.3 ms with little alive) after every `everyBytes` of buffers that became
 * garbage. Each socket read and each inflated chunk is a fresh ArrayBuffer whose memory is malloc'd
 * outside V8's heap; the young generation fills slowly, so V8 frees them only when their external total
 * forces a major GC, by which time ~25 MB have piled up and glibc has grown its heap to hold them. A
 * scavenge every 4 MiB lets each new buffer reuse a freed one, which lowers the peak and saves the page
 * faults of fresh memory (bench/RESULTS.md has the figures).
 */
export class Scavenger {
  private since = 0;

  /** `every`: bytes of buffers, or (perFile) a number of files' worth of fs.Stats and Dirents. */
  constructor(private readonly every = 4 << 20) {}

  /** A scavenge every this many files looked at: their Stats objects are garbage at once. */
  static perFile(): Scavenger {
    return new Scavenger(1000);
  }

  /** `amount` more of garbage (bytes, or files with perFile). */
  discarded(amount: number): void {
    this.since += amount;
    if (this.since < this.every) return;
    this.since = 0;
    collector()?.({ type: 'minor' });
  }
}

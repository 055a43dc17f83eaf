import { lstatSync, type Stats } from 'node:fs';

/** Paths inside a tree, relative to its root and already normal (no leading /, no . or ..); "" is the root. */

export function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash < 0 ? '' : rel.slice(0, slash);
}

/**
 * Whether each directory of a tree, and every one above it up to the root, passes `trusted` (given its lstat;
 * a missing one never does). Asked of one directory after another, each is looked at once.
 */
export class TrustedDirs {
  private readonly known = new Map<string, boolean>();

  constructor(
    private readonly root: string,
    private readonly trusted: (st: Stats) => boolean,
  ) {}

  has(rel: string): boolean {
    let known = this.known.get(rel);
    if (known === undefined) {
      const above = rel === '' || this.has(parentOf(rel));
      const st = above ? lstatSync(rel === '' ? this.root : `${this.root}/${rel}`, { throwIfNoEntry: false }) : undefined;
      known = st !== undefined && this.trusted(st);
      this.known.set(rel, known);
    }
    return known;
  }
}

/** An entry's lstat, or undefined when there is none there or it cannot be looked at (the unpacker's walk). */
export function lstatQuiet(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

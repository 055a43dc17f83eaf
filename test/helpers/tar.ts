import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

/**
 * A minimal ustar writer: tests need archives that no well-behaved tool would make (`..` paths, links
 * out of the tree, device files), so entries are written byte by byte.
 */
export interface TarEntry {
  path: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink' | 'chardev' | 'fifo';
  body?: string | Buffer;
  mode?: number;
  mtime?: number; // seconds
  linkpath?: string;
  uid?: number;
  gid?: number;
  /** PAX extended header records (`linkpath`, `path`...) written before the entry, as an 'x' entry. */
  pax?: Record<string, string>;
}

const TYPE_FLAG: Record<NonNullable<TarEntry['type']>, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  chardev: '3',
  dir: '5',
  fifo: '6',
};

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

function header(e: TarEntry, flag?: string): Buffer {
  const h = Buffer.alloc(512);
  const type = e.type ?? 'file';
  const body = type === 'file' ? Buffer.from(e.body ?? '') : Buffer.alloc(0);
  let name = e.path;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
  }
  h.write(name, 0, 100, 'utf8');
  h.write(octal(e.mode ?? (type === 'dir' ? 0o755 : 0o644), 8), 100, 'latin1');
  h.write(octal(e.uid ?? 0, 8), 108, 'latin1');
  h.write(octal(e.gid ?? 0, 8), 116, 'latin1');
  h.write(octal(body.length, 12), 124, 'latin1');
  h.write(octal(e.mtime ?? 1416223353, 12), 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write(flag ?? TYPE_FLAG[type], 156, 'latin1');
  if (e.linkpath) h.write(e.linkpath, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 'latin1');
  return h;
}

export function tar(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    if (e.pax) {
      const body = Buffer.from(
        Object.entries(e.pax)
          .map(([k, v]) => paxRecord(k, v))
          .join(''),
      );
      blocks.push(header({ path: 'PaxHeader', body }, 'x'), body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
    blocks.push(header(e));
    if ((e.type ?? 'file') === 'file') {
      const body = Buffer.from(e.body ?? '');
      blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** "LEN key=value\n", LEN counting itself. */
function paxRecord(key: string, value: string): string {
  const rest = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(rest) + 1;
  while (String(len).length + Buffer.byteLength(rest) !== len) len = String(len).length + Buffer.byteLength(rest);
  return `${len}${rest}`;
}

export function tgz(entries: TarEntry[]): Buffer {
  return gzipSync(tar(entries));
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha1(data: Buffer): string {
  return createHash('sha1').update(data).digest('hex');
}

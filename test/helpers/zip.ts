import { crc32, deflateRawSync } from 'node:zlib';

/** A minimal zip writer (deflate, Unix modes, symlinks): tests need hostile zips no tool would make. */
export interface ZipEntry {
  path: string;
  body?: string | Buffer;
  /** Unix mode including the file type bits; default a 0644 file (0755 dir for paths ending in /). */
  mode?: number;
  symlink?: string;
  mtime?: Date;
  /** What the headers claim, where a hostile zip lies: the uncompressed size, the method, encryption. */
  declaredSize?: number;
  method?: number;
  encrypted?: boolean;
  /** Stored (method 0) instead of deflated. */
  stored?: boolean;
  /** The CRC-32 the headers claim, where a zip lies about its data. */
  crc?: number;
  /**
   * A central record only, pointing at the local header and data of entry `sharesDataOf` (an earlier index):
   * the overlapping records of a zip bomb. Its own body, sizes and CRC describe that data.
   */
  sharesDataOf?: number;
}

function dosTime(d: Date): { time: number; date: number } {
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | Math.floor(d.getSeconds() / 2),
    date: ((d.getFullYear() - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

export function zip(entries: ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  const offsets: number[] = [];
  for (const e of entries) {
    const isDir = e.path.endsWith('/');
    const data = Buffer.from(e.symlink ?? e.body ?? '');
    const mode = e.symlink !== undefined ? 0o120777 : (e.mode ?? (isDir ? 0o040755 : 0o100644));
    const compressed = isDir || e.stored ? data : deflateRawSync(data);
    const method = e.method ?? (isDir || e.stored ? 0 : 8);
    // Bit 11: the name is UTF-8 (as Info-ZIP marks a non-ASCII one); without it, readers decode CP437.
    const flags = (e.encrypted ? 1 : 0) | (/[^\x00-\x7f]/.test(e.path) ? 0x800 : 0);
    const size = e.declaredSize ?? data.length;
    const crc = e.crc ?? crc32(data);
    const { time, date } = dosTime(e.mtime ?? new Date(2026, 0, 1, 12, 0, 0));
    const name = Buffer.from(e.path);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(time, 10);
    local.writeUInt16LE(date, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const shared = e.sharesDataOf === undefined ? undefined : offsets[e.sharesDataOf];
    offsets.push(shared ?? offset);
    if (shared === undefined) locals.push(local, name, compressed);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(time, 12);
    central.writeUInt16LE(date, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(size, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE((mode << 16) >>> 0, 38);
    central.writeUInt32LE(shared ?? offset, 42);
    centrals.push(central, name);
    if (shared === undefined) offset += local.length + name.length + compressed.length;
  }
  const dir = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}

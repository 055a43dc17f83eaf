import { Header, type HeaderData } from 'tar/header';
import { name as typeNames } from 'tar/types';

/** The fields of a 512-byte tar header that unpacking uses, as node-tar's Header decodes them. */
export interface DecodedHeader {
  nullBlock: boolean;
  cksumValid: boolean;
  /** node-tar's name for the type flag ('File', 'Directory', ...), or 'Unsupported'. */
  type: string;
  path?: string | undefined;
  linkpath?: string | undefined;
  size?: number | undefined;
  mode?: number | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
  mtime?: Date | undefined;
  atime?: Date | undefined;
}

/**
 * Decodes a header block: the common case (octal numbers, NUL-padded names, no pax header pending) here,
 * anything else by node-tar's Header. node-tar turns each field into a string and trims, cuts and parses
 * it: 3.5 µs a header, 35 ms of the main thread for the 10,000-file benchmark archive. This reads the
 * bytes and gives the same result; a property test holds it to Header's on random blocks.
 */
export function decodeHeader(block: Buffer, at: number, extended: HeaderData | undefined, global: HeaderData | undefined): DecodedHeader {
  return (extended || global ? undefined : plainHeader(block, at)) ?? new Header(block, at, extended, global);
}

/** Thrown inside plainHeader for a field it leaves to node-tar. */
const UNUSUAL = Symbol('unusual');

function plainHeader(buf: Buffer, off: number): DecodedHeader | undefined {
  try {
    return decodePlain(buf, off);
  } catch (err) {
    if (err === UNUSUAL) return undefined;
    throw err;
  }
}

function decodePlain(buf: Buffer, off: number): DecodedHeader {
  let sum = 8 * 0x20;
  for (let i = off; i < off + 148; i++) sum += buf[i] as number;
  for (let i = off + 156; i < off + 512; i++) sum += buf[i] as number;
  // node-tar reads 12 bytes from the checksum's offset, past its 8.
  const cksum = octal(buf, off + 148, 12);
  if (cksum === undefined) {
    // An end-of-archive block. Anything else without a checksum is damaged: node-tar names what is wrong.
    if (sum === 8 * 0x20) return { nullBlock: true, cksumValid: false, type: 'Unsupported' };
    throw UNUSUAL;
  }
  const flag = buf[off + 156] as number;
  if (flag >= 0x80) throw UNUSUAL;
  // A NUL type flag is a file, and so is "0" unless its name ends in a slash (old tars' directories).
  let code = flag === 0 ? '0' : String.fromCharCode(flag);
  let path = text(buf, off, 100);
  if (code === '0' && path.endsWith('/')) code = '5';
  const type = typeNames.get(code as never) ?? 'Unsupported';
  const header: DecodedHeader = {
    nullBlock: false,
    cksumValid: sum === cksum,
    type,
    path,
    linkpath: text(buf, off + 157, 100),
    // Read even for a directory (whose size counts as 0): a field node-tar cannot read makes it throw.
    size: octal(buf, off + 124, 12),
    mode: octal(buf, off + 100, 8),
    uid: octal(buf, off + 108, 8),
    gid: octal(buf, off + 116, 8),
    mtime: date(octal(buf, off + 136, 12)),
  };
  if (code === '5') header.size = 0;
  if (isPosixMagic(buf, off + 257)) {
    // Unused, but read as node-tar reads them: one it cannot read makes Header throw.
    octal(buf, off + 329, 8);
    octal(buf, off + 337, 8);
    if (buf[off + 475] !== 0) {
      path = `${text(buf, off + 345, 155)}/${path}`;
    } else {
      const prefix = text(buf, off + 345, 130);
      if (prefix) path = `${prefix}/${path}`;
      header.atime = date(octal(buf, off + 476, 12));
      octal(buf, off + 488, 12);
    }
    header.path = path;
  }
  return header;
}

/** POSIX ustar's magic and version: only then does node-tar read the prefix and the times after it. */
const POSIX_MAGIC = Buffer.from('ustar\u000000', 'latin1');

function isPosixMagic(buf: Buffer, at: number): boolean {
  return buf.compare(POSIX_MAGIC, 0, POSIX_MAGIC.length, at, at + POSIX_MAGIC.length) === 0;
}

/**
 * An octal field as node-tar reads it (cut at the first NUL, trimmed, parseInt base 8): spaces, then
 * digits, up to the first other byte; nothing there is undefined. Signs, tabs or base-256 go to node-tar.
 */
function octal(buf: Buffer, at: number, size: number): number | undefined {
  const end = at + size;
  let i = at;
  while (i < end && buf[i] === 0x20) i++;
  if (i === end || buf[i] === 0) return undefined;
  let value = 0;
  let digits = 0;
  for (; i < end; i++, digits++) {
    const c = buf[i] as number;
    if (c < 0x30 || c > 0x37) break;
    value = value * 8 + (c - 0x30);
  }
  if (digits === 0) throw UNUSUAL;
  return value;
}

/** A NUL-padded name field; one with a newline after its NUL (node-tar's cut stops there) goes to node-tar. */
function text(buf: Buffer, at: number, size: number): string {
  const end = at + size;
  let nul = at;
  while (nul < end && buf[nul] !== 0) nul++;
  for (let i = nul; i < end; i++) if (buf[i] === 0x0a) throw UNUSUAL;
  return buf.toString('utf8', at, nul);
}

function date(seconds: number | undefined): Date | undefined {
  return seconds === undefined ? undefined : new Date(seconds * 1000);
}

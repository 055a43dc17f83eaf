import type { HeaderData } from 'tar/header';
import { Pax } from 'tar/pax';
import { decodeHeader, type DecodedHeader } from './header.js';

/** One entry's header, with pax and GNU long-name headers applied. */
export interface TarHeader {
  /** node-tar's name for the type flag: 'File', 'Directory', 'SymbolicLink', 'Link', ... */
  type: string;
  path: string;
  linkpath: string | undefined;
  /** Bytes of data that follow the header. */
  size: number;
  mode: number | undefined;
  uid: number | undefined;
  gid: number | undefined;
  mtime: Date | undefined;
  atime: Date | undefined;
}

/** Where one entry's data goes: `data` gets it piece by piece, in order, then `end` is called once. */
export interface EntryBody {
  data(piece: Buffer): void;
  end(): void;
}

export interface TarStreamEvents {
  /** A file-system entry (file, directory, link, device, FIFO): returns where its data goes, if anywhere. */
  entry(header: TarHeader): EntryBody | undefined;
  /** An entry of a type that is not a file-system object (a sparse file, a tape volume label...): skipped. */
  skipped(header: TarHeader): void;
  /** The stream is not a whole, valid tar; `message` says why, of "it". Parsing has stopped. */
  corrupt(message: string): void;
}

const BLOCK = 512;
/** Pax and GNU long-name headers larger than this are refused: no real path or attribute set is that long. */
const MAX_META_BYTES = 1 << 20;

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const FS_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Link', 'SymbolicLink', 'CharacterDevice', 'BlockDevice', 'Directory', 'FIFO', 'GNUDumpDir']);
const META_TYPES = new Set(['ExtendedHeader', 'OldExtendedHeader', 'GlobalExtendedHeader', 'NextFileHasLongPath', 'OldGnuLongPath', 'NextFileHasLongLinkpath']);
/** Types whose header may name a link target (node-tar's rule: any other type with one is a damaged header). */
const MAY_LINK = new Set(['Link', 'SymbolicLink', 'ExtendedHeader', 'GlobalExtendedHeader']);

/**
 * A tar parser that hands each entry's data on as slices of the chunks it is given: no stream object per
 * entry, no copies. node-tar's Parser made a Minipass stream per entry and queued its events, which cost
 * more than half of the main thread's parsing time on an archive of 10,000 files. Pax records, and any
 * header out of the ordinary, are still decoded by node-tar (Pax, Header), which knows the variants: GNU
 * base-256 numbers, pax overrides; tar-header.ts reads ordinary headers exactly as Header would.
 *
 * Stricter than node-tar where being lenient would deploy something other than the archive: an archive
 * that ends inside an entry or a header, or has no entries at all, is corrupt; so is a long-name or pax
 * header over 1 MiB (node-tar skips it, and the next entry would be written under its short name). A
 * local pax header overrides a global one, as POSIX says (node-tar lets the global one win).
 */
export class TarStream {
  private state: 'header' | 'data' | 'eof' = 'header';
  private stopped = false;
  /** A header split across chunks, gathered here. */
  private readonly partial = Buffer.alloc(BLOCK);
  private partialBytes = 0;
  /** Where the current entry's data goes; undefined while skipping it or gathering a meta header. */
  private body: EntryBody | undefined;
  /** What the data being read belongs to, for messages. */
  private reading = '';
  private meta: { type: string; pieces: Buffer[] } | undefined;
  private remain = 0;
  private padding = 0;
  private extended: HeaderData | undefined;
  /**
   * The real name of the next entry when a pax header says it is a GNU sparse file (`tar --sparse
   * --format=pax`): its data is a sparse map followed by the data, under a made-up GNUSparseFile.N/ path.
   * node-tar does not know these keys, and wrote that map and data out as the file.
   */
  private sparseName: string | undefined;
  private global: HeaderData | undefined;
  private nullBlock = false;
  private entries = 0;
  /** Offset in the tar stream of the next byte, for messages. */
  private offset = 0;

  constructor(private readonly events: TarStreamEvents) {}

  write(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length && !this.stopped) {
      if (this.state === 'eof') return;
      if (this.state === 'data') {
        pos += this.consumeData(chunk, pos);
        continue;
      }
      if (this.partialBytes > 0 || chunk.length - pos < BLOCK) {
        const take = Math.min(BLOCK - this.partialBytes, chunk.length - pos);
        chunk.copy(this.partial, this.partialBytes, pos, pos + take);
        this.partialBytes += take;
        pos += take;
        if (this.partialBytes < BLOCK) return;
        this.partialBytes = 0;
        this.header(this.partial, 0);
      } else {
        this.header(chunk, pos);
        pos += BLOCK;
      }
    }
  }

  /** The archive has no more bytes: anything left unfinished means it was cut short. */
  end(): void {
    if (this.stopped) return;
    if (this.state === 'data') {
      return this.fail(`it ends inside ${this.reading}: ${this.remain + this.padding} more bytes were expected`);
    }
    if (this.partialBytes > 0 && this.partial.subarray(0, this.partialBytes).some((b) => b !== 0)) {
      return this.fail(`it ends inside a tar header, at byte ${this.offset}`);
    }
    // rsync --delete would empty dest: an archive of nothing is more likely a broken build than intent.
    if (this.entries === 0) return this.fail('it has no entries');
    this.stopped = true;
  }

  /** Stops parsing: nothing more is handed on. */
  stop(): void {
    this.stopped = true;
  }

  private fail(message: string): void {
    this.stopped = true;
    this.events.corrupt(message);
  }

  private header(block: Buffer, at: number): void {
    const start = this.offset;
    this.offset += BLOCK;
    let h: DecodedHeader;
    try {
      h = decodeHeader(block, at, this.extended, this.global);
    } catch (err) {
      return this.fail(`a tar header at byte ${start} cannot be read: ${(err as Error).message}`);
    }
    if (h.nullBlock) {
      // Two zero blocks end the archive; what follows them is not part of it, as for GNU tar.
      if (this.nullBlock) this.state = 'eof';
      this.nullBlock = true;
      return;
    }
    this.nullBlock = false;
    if (!h.cksumValid) return this.fail(`a tar header is corrupt (header checksum mismatch at byte ${start})`);
    if (!h.path) return this.fail(`a tar header at byte ${start} has no path`);
    const type = h.type;
    const blockLinkpath = h.linkpath;
    if (!MAY_LINK.has(type) && blockLinkpath) return this.fail(`a tar header at byte ${start} (${type} ${JSON.stringify(h.path)}) names a link target, which only links may have`);
    const size = h.size ?? 0;
    this.remain = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    this.state = this.remain + this.padding > 0 ? 'data' : 'header';
    this.body = undefined;
    this.reading = `a ${type} header`;
    if (META_TYPES.has(type)) {
      if (size > MAX_META_BYTES) return this.fail(`a ${type} header at byte ${start} is ${size} bytes long, over the 1 MiB a real one needs`);
      this.meta = { type, pieces: [] };
      if (size === 0) this.applyMeta();
      return;
    }
    const extended = this.extended;
    const sparseName = this.sparseName;
    this.extended = undefined;
    this.sparseName = undefined;
    const header: TarHeader = {
      type: sparseName !== undefined && FILE_TYPES.has(type) ? 'SparseFile' : type,
      path: sparseName || (extended?.path ?? h.path),
      linkpath: extended?.linkpath ?? (blockLinkpath || undefined),
      size,
      mode: h.mode === undefined ? undefined : h.mode & 0o7777,
      uid: h.uid,
      gid: h.gid,
      mtime: h.mtime,
      atime: h.atime,
    };
    this.entries++;
    if (!FS_TYPES.has(header.type)) return this.events.skipped(header);
    if ((type === 'Link' || type === 'SymbolicLink') && !header.linkpath) {
      return this.fail(`the ${type} entry ${JSON.stringify(header.path)} has no target`);
    }
    this.reading = JSON.stringify(header.path);
    this.body = this.events.entry(header);
    if (this.remain === 0 && !this.stopped) this.endEntry();
  }

  private consumeData(chunk: Buffer, pos: number): number {
    const available = chunk.length - pos;
    if (this.remain > 0) {
      const take = Math.min(this.remain, available);
      const piece = take === chunk.length ? chunk : chunk.subarray(pos, pos + take);
      this.remain -= take;
      this.offset += take;
      if (this.meta) this.meta.pieces.push(Buffer.from(piece));
      else this.body?.data(piece);
      if (this.remain === 0 && !this.stopped) {
        if (this.meta) this.applyMeta();
        else this.endEntry();
      }
      return take;
    }
    const skip = Math.min(this.padding, available);
    this.padding -= skip;
    this.offset += skip;
    if (this.padding === 0) this.state = 'header';
    return skip;
  }

  private endEntry(): void {
    const body = this.body;
    this.body = undefined;
    if (this.padding === 0 && this.remain === 0) this.state = 'header';
    body?.end();
  }

  private applyMeta(): void {
    const { type, pieces } = this.meta as { type: string; pieces: Buffer[] };
    this.meta = undefined;
    if (this.padding === 0) this.state = 'header';
    // Decoded once whole: a UTF-8 character may be split across two chunks.
    const text = Buffer.concat(pieces).toString('utf8');
    switch (type) {
      case 'ExtendedHeader':
      case 'OldExtendedHeader':
        this.extended = Pax.parse(text, this.extended, false);
        if (/(^|\n)\d+ GNU\.sparse\./.test(text)) this.sparseName = /(?:^|\n)\d+ GNU\.sparse\.name=([^\n]*)/.exec(text)?.[1] ?? '';
        break;
      case 'GlobalExtendedHeader':
        this.global = Pax.parse(text, this.global, true);
        break;
      case 'NextFileHasLongPath':
      case 'OldGnuLongPath':
        this.extended = { ...this.extended, path: text.replace(/\0.*/s, '') };
        break;
      default:
        this.extended = { ...this.extended, linkpath: text.replace(/\0.*/s, '') };
    }
  }
}

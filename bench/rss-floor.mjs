// The floor for peak RSS (bench/run.ts, group "memory"): what node itself needs to download a tar.gz over
// HTTP, hash it, inflate it and write its files, with nothing stretcher adds: no manifest, no lock, no
// checks on names or links, no modes, owners or mtimes, no sync. A bare ustar/pax/GNU parser and direct
// writes, and the same minor GC every 4 MiB of buffers as stretcher's Scavenger (src/shared/scavenger.ts),
// so that the figure is the floor of that approach too. Plain JavaScript, run by node without tsx: tsx's
// loader thread would be counted in its RSS.
//
// node --expose-gc bench/rss-floor.mjs URL SHA256 DIR: exits 1 if the checksum differs.
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { get } from 'node:http';
import path from 'node:path';
import { createGunzip } from 'node:zlib';

const [url, sha256, out] = process.argv.slice(2);
if (!url || !sha256 || !out) {
  process.stderr.write('usage: node --expose-gc bench/rss-floor.mjs URL SHA256 DIR\n');
  process.exit(2);
}
const scavenge = typeof globalThis.gc === 'function' ? () => globalThis.gc({ type: 'minor' }) : () => {};

const BLOCK = 512;
const field = (h, at, len) => h.toString('latin1', at, at + len).replace(/\0.*$/s, '');
const octal = (h, at, len) => Number.parseInt(field(h, at, len).trim() || '0', 8);

/** One tar stream: headers, then each entry's data (written, or gathered for a long name), then padding. */
class Tar {
  partial = Buffer.alloc(BLOCK);
  filled = 0;
  remaining = 0;
  padding = 0;
  fd = -1;
  meta = null;
  nextName = null;
  files = 0;

  write(chunk) {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - pos);
        if (this.fd >= 0) writeSync(this.fd, chunk, pos, n);
        else if (this.meta) this.meta.push(Buffer.from(chunk.subarray(pos, pos + n)));
        this.remaining -= n;
        pos += n;
        if (this.remaining === 0) this.endEntry();
        continue;
      }
      if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - pos);
        this.padding -= n;
        pos += n;
        continue;
      }
      const n = Math.min(BLOCK - this.filled, chunk.length - pos);
      chunk.copy(this.partial, this.filled, pos, pos + n);
      this.filled += n;
      pos += n;
      if (this.filled === BLOCK) {
        this.filled = 0;
        this.header(this.partial);
      }
    }
  }

  header(h) {
    if (h[0] === 0) return;
    const prefix = field(h, 345, 155);
    const name = this.nextName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    const size = octal(h, 124, 12);
    const type = String.fromCharCode(h[156] || 48);
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === 'x' || type === 'L') {
      this.meta = [];
      this.metaType = type;
    } else {
      this.nextName = null;
      const file = path.join(out, name);
      if (type === '5') mkdirSync(file, { recursive: true });
      else if (type === '0' || type === '7') {
        mkdirSync(path.dirname(file), { recursive: true });
        this.fd = openSync(file, 'w', 0o644);
        this.files++;
      }
    }
    if (size === 0) this.endEntry();
  }

  endEntry() {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    if (!this.meta) return;
    const text = Buffer.concat(this.meta).toString('utf8');
    this.meta = null;
    if (this.metaType === 'L') this.nextName = text.replace(/\0.*$/s, '');
    else this.nextName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(text)?.[1] ?? null;
  }
}

mkdirSync(out, { recursive: true });
const tar = new Tar();
const hash = createHash('sha256');
const gunzip = createGunzip({ chunkSize: 256 * 1024 });
let garbage = 0;
gunzip.on('data', (chunk) => {
  tar.write(chunk);
  garbage += chunk.length;
  if (garbage >= 4 << 20) {
    garbage = 0;
    scavenge();
  }
});
gunzip.on('end', () => {
  if (hash.digest('hex') !== sha256) {
    process.stderr.write('rss-floor: checksum mismatch\n');
    process.exit(1);
  }
  process.stdout.write(`rss-floor: ${tar.files} files\n`);
});
get(url, (res) => {
  if (res.statusCode !== 200) {
    process.stderr.write(`rss-floor: HTTP ${res.statusCode}\n`);
    process.exit(1);
  }
  res.on('data', (chunk) => {
    hash.update(chunk);
    if (!gunzip.write(chunk)) {
      res.pause();
      gunzip.once('drain', () => res.resume());
    }
  });
  res.on('end', () => gunzip.end());
});

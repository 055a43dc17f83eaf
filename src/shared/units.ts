import { UsageError } from './errors.js';

// go-humanize's table, which Go stretcher's --max-bandwidth is parsed with: SI units are powers of 1000,
// IEC units powers of 1024, one-letter units are SI ("10M" is 10,000,000 bytes).
const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  ki: 1024,
  kib: 1024,
  m: 1e6,
  mb: 1e6,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1e9,
  gb: 1e9,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1e12,
  tb: 1e12,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
};

const SIZE = /^([0-9][0-9,]*(?:\.[0-9]*)?|\.[0-9]+)\s*([a-z]*)$/i;

/**
 * Bytes (per second, for a bandwidth) from "10MB", "10MiB", "1.5k", "1,000"; zero, negatives and unknown
 * units are errors. `per`: what the number counts, for the message.
 */
export function parseBandwidth(text: string, flag: string, per: 'bytes per second' | 'bytes' = 'bytes per second'): number {
  const m = SIZE.exec(text.trim());
  const unit = m ? UNITS[(m[2] ?? '').toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    const examples = per === 'bytes' ? '1000000, 10MB, 10GiB or 1.5G' : '1000000, 10MB, 10MiB or 1.5k';
    throw new UsageError(`invalid size ${JSON.stringify(text)} for --${flag}: use ${per} such as ${examples}`);
  }
  const bytes = Math.floor(Number((m[1] ?? '').replaceAll(',', '')) * unit);
  if (!(bytes > 0)) throw new UsageError(`--${flag} must be greater than zero (got ${JSON.stringify(text)})`);
  return bytes;
}

/**
 * 1536000 -> "1.50 MB": decimal units, as the bandwidth flag reads them; a whole number of binary units (a
 * limit such as 1 MiB or 64 GiB) is said in those: "1 MiB", not "1.05 MB".
 */
export function formatBytes(bytes: number): string {
  for (const [i, unit] of ['TiB', 'GiB', 'MiB', 'KiB'].entries()) {
    const size = 1024 ** (4 - i);
    if (bytes >= size && bytes % size === 0 && bytes / size < 1024) return `${bytes / size} ${unit}`;
  }
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 'B';
  for (const u of units) {
    if (value < 1000) break;
    value /= 1000;
    unit = u;
  }
  // Three significant digits: 1.50 MB, 25.0 MB, 150 MB.
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${unit}`;
}

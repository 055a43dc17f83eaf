import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Deterministic pseudo-random bytes (mulberry32), so fixtures are the same on every machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS =
  'const let function return import export from async await class extends new this if else for while of in true false null undefined deploy server archive manifest release rsync checksum stretcher node package module config value key error log'.split(
    ' ',
  );

/** Source-code-like text: compresses about as well as a real application tree (3-4x). */
function text(rand: () => number, bytes: number): Buffer {
  const parts: string[] = [];
  let n = 0;
  while (n < bytes) {
    const line = Array.from({ length: 4 + Math.floor(rand() * 8) }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(' ') + ';\n';
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, bytes);
}

/** Half incompressible, half text: images, bundles, vendored binaries. */
function blob(rand: () => number, bytes: number): Buffer {
  const buf = Buffer.alloc(bytes);
  for (let i = 0; i < bytes / 2; i += 4) buf.writeUInt32LE(Math.floor(rand() * 2 ** 32), i);
  text(rand, bytes - Math.floor(bytes / 2)).copy(buf, Math.floor(bytes / 2));
  return buf;
}

export interface Fixture {
  name: string;
  archive: string;
  sha256: string;
  bytes: number;
  files: number;
}

interface Spec {
  dirs: number;
  filesPerDir: number;
  minFile: number;
  maxFile: number;
  bigFiles: number;
  bigFileBytes: number;
  seed: number;
  /** Fraction of files whose content differs from seed 1's tree (the "previous version"). */
  variant?: number;
}

const SPECS: Record<string, Spec> = {
  small: { dirs: 2, filesPerDir: 10, minFile: 4000, maxFile: 6000, bigFiles: 0, bigFileBytes: 0, seed: 7 },
  large: { dirs: 100, filesPerDir: 100, minFile: 1000, maxFile: 20000, bigFiles: 3, bigFileBytes: 15_000_000, seed: 1 },
  'large-prev': { dirs: 100, filesPerDir: 100, minFile: 1000, maxFile: 20000, bigFiles: 3, bigFileBytes: 15_000_000, seed: 1, variant: 0.1 },
  xl: { dirs: 100, filesPerDir: 100, minFile: 1000, maxFile: 20000, bigFiles: 12, bigFileBytes: 37_500_000, seed: 1 },
};

function buildTree(root: string, spec: Spec): { bytes: number; files: number } {
  const rand = prng(spec.seed);
  const change = prng(99);
  let bytes = 0;
  let files = 0;
  for (let d = 0; d < spec.dirs; d++) {
    const dir = path.join(root, `pkg${String(d).padStart(3, '0')}`, 'lib');
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < spec.filesPerDir; f++) {
      const size = spec.minFile + Math.floor(rand() * (spec.maxFile - spec.minFile));
      let body = text(rand, size);
      if (spec.variant && change() < spec.variant) body = text(prng(d * 1000 + f), size + 17);
      writeFileSync(path.join(dir, `mod${f}.js`), body);
      bytes += body.length;
      files++;
    }
  }
  mkdirSync(path.join(root, 'assets'), { recursive: true });
  for (let b = 0; b < spec.bigFiles; b++) {
    const body = blob(rand, spec.bigFileBytes);
    writeFileSync(path.join(root, 'assets', `bundle${b}.bin`), body);
    bytes += body.length;
    files++;
  }
  return { bytes, files };
}

/** Builds (once; cached in bench/fixtures) a tree and its .tar.gz made by GNU tar, as a CI job would. */
export function fixture(dir: string, name: keyof typeof SPECS): Fixture {
  const meta = path.join(dir, `${name}.json`);
  if (existsSync(meta)) return JSON.parse(readFileSync(meta, 'utf8')) as Fixture;
  const spec = SPECS[name] as Spec;
  const tree = path.join(dir, `${name}-tree`);
  rmSync(tree, { recursive: true, force: true });
  process.stderr.write(`building fixture ${name}...\n`);
  const { bytes, files } = buildTree(tree, spec);
  const archive = path.join(dir, `${name}.tar.gz`);
  execFileSync('sh', ['-c', `tar -C "${tree}" -cf - . | gzip -6 > "${archive}"`]);
  const sha256 = execFileSync('sha256sum', [archive]).toString().split(' ')[0] as string;
  const result: Fixture = { name, archive, sha256, bytes, files };
  writeFileSync(meta, JSON.stringify(result));
  return result;
}

/**
 * The same tree as a zip (repo-deploy's format), made by Info-ZIP's zip as a CI job would; undefined when
 * zip or unzip is not installed. Cached beside the tar.gz.
 */
export function zipFixture(dir: string, of: Fixture): Fixture | undefined {
  const meta = path.join(dir, `${of.name}-zip.json`);
  if (existsSync(meta)) return JSON.parse(readFileSync(meta, 'utf8')) as Fixture;
  const tree = path.join(dir, `${of.name}-tree`);
  const archive = path.join(dir, `${of.name}.zip`);
  try {
    // unzip too: the shell pipeline it is timed against uses it.
    for (const tool of ['zip', 'unzip']) execFileSync(tool, ['-v'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  process.stderr.write(`building fixture ${of.name}.zip...\n`);
  rmSync(archive, { force: true });
  execFileSync('zip', ['-q', '-r', '-X', '-6', archive, '.'], { cwd: tree });
  const sha256 = execFileSync('sha256sum', [archive]).toString().split(' ')[0] as string;
  const result: Fixture = { name: `${of.name}-zip`, archive, sha256, bytes: of.bytes, files: of.files };
  writeFileSync(meta, JSON.stringify(result));
  return result;
}

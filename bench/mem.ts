/**
 * node --import tsx bench/mem.ts: where a large deploy's peak RSS goes. Serves the bench fixture over HTTP,
 * runs stretcher (dist/cli.js) MEM_RUNS times (default 3) into MEM_DIR (default /mnt/bt, a tmpfs) and reads
 * /proc/PID/smaps every 15 ms, keeping the sample with the largest Rss: file-backed Rss per file, anonymous
 * Rss per kind of mapping, and the thread count then. MEM_FIXTURE=xl for the 4x archive; MEM_ENV='A=1 B=2'
 * and MEM_ARGS='--flag' are passed to each run; MEM_CLI=a/cli.js,b/cli.js?NAME=value alternates builds
 * (each with its own environment, if given); MEM_BREAKDOWN=0
 * reads only VmHWM (smaps sampling takes CPU from the deploy: for timing). Prints VmHWM per run and the breakdown of the largest one.
 */
import { spawn } from 'node:child_process';
import { createReadStream, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fixture } from './fixtures.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLIS = (process.env.MEM_CLI ?? path.join(path.dirname(HERE), 'dist', 'cli.js')).split(',');
const FIXTURES = path.join(HERE, 'fixtures');
const WORK = path.join(process.env.MEM_DIR ?? '/mnt/bt', 'mem-work');
const RUNS = Number(process.env.MEM_RUNS ?? 3);
const extraEnv = Object.fromEntries(
  (process.env.MEM_ENV ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((kv) => kv.split('=', 2) as [string, string]),
);
const BREAKDOWN = process.env.MEM_BREAKDOWN !== '0';
const extraArgs = (process.env.MEM_ARGS ?? '').split(/\s+/).filter(Boolean);

interface Breakdown {
  rssKb: number;
  threads: number;
  file: Map<string, number>;
  anon: Map<string, number>;
  raw: string;
}

/** Rss per mapping from smaps, grouped: file-backed by file name, anonymous by [heap], [stack], or size class. */
function sample(pid: number): Breakdown | undefined {
  let text: string;
  let threads = 0;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
    threads = readdirSync(`/proc/${pid}/task`).length;
  } catch {
    return undefined;
  }
  const file = new Map<string, number>();
  const anon = new Map<string, number>();
  let rssKb = 0;
  let name = '';
  let sizeKb = 0;
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      name = head[1] === '0' ? (head[2] ?? '') : (head[2] ?? '');
      continue;
    }
    if (line.startsWith('Size:')) sizeKb = Number(line.split(/\s+/)[1]);
    if (!line.startsWith('Rss:')) continue;
    const kb = Number(line.split(/\s+/)[1]);
    if (kb === 0) continue;
    rssKb += kb;
    if (name.startsWith('/')) file.set(name, (file.get(name) ?? 0) + kb);
    else {
      const key = name || (sizeKb >= 60 * 1024 ? 'anon >= 60 MiB (malloc arena reservations)' : sizeKb >= 1024 ? 'anon 1-60 MiB' : 'anon < 1 MiB');
      anon.set(key, (anon.get(key) ?? 0) + kb);
    }
  }
  return { rssKb, threads, file, anon, raw: text };
}

function run(cli: string, manifest: string): Promise<{ hwmKb: number; peak: Breakdown | undefined; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    // A build's entry may carry its own environment: path/cli.js?NAME=value&NAME=value.
    const [file, query] = cli.split('?') as [string, string | undefined];
    const own = Object.fromEntries(new URLSearchParams(query ?? ''));
    const child = spawn(process.execPath, [...extraArgs, file], {
      env: { ...process.env, TMPDIR: path.join(WORK, 'tmp'), STRETCHER_STATE_DIR: path.join(WORK, 'state'), ...extraEnv, ...own },
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    let peak: Breakdown | undefined;
    let hwmKb = 0;
    const poll = setInterval(() => {
      const s = BREAKDOWN ? sample(child.pid as number) : undefined;
      if (s && (!peak || s.rssKb > peak.rssKb)) peak = s;
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
      } catch {
        // exited
      }
    }, 15);
    child.stdin.end(manifest);
    child.on('close', (code) => {
      clearInterval(poll);
      if (code !== 0) return reject(new Error(`exit ${code}\n${stderr}`));
      resolve({ hwmKb, peak, ms: performance.now() - started });
    });
  });
}

async function main(): Promise<void> {
  const fx = fixture(FIXTURES, (process.env.MEM_FIXTURE ?? 'large') as 'large');
  const server = createServer((req, res) => {
    const file = path.join(FIXTURES, path.basename(req.url ?? ''));
    const { size } = statSync(file);
    res.writeHead(200, { 'content-length': size });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const mb = (kb: number): string => (kb / 1024).toFixed(1);
  let worst: Breakdown | undefined;
  const hwms = new Map<string, number[]>(CLIS.map((c) => [c, []]));
  const times = new Map<string, number[]>(CLIS.map((c) => [c, []]));
  for (let i = 0; i < RUNS; i++)
    for (const cli of CLIS) {
      rmSync(WORK, { recursive: true, force: true });
      mkdirSync(path.join(WORK, 'tmp'), { recursive: true });
      const file = path.join(WORK, 'm.yml');
      writeFileSync(file, `src: ${base}/${path.basename(fx.archive)}\nchecksum: ${fx.sha256}\ndest: ${path.join(WORK, 'dest')}\nsync_strategy: rsync\n`);
      const r = await run(cli, file);
      hwms.get(cli)?.push(r.hwmKb);
      times.get(cli)?.push(r.ms);
      process.stdout.write(`run ${i + 1} ${CLIS.length > 1 ? cli : ''}: VmHWM ${mb(r.hwmKb)} MB, sampled peak Rss ${mb(r.peak?.rssKb ?? 0)} MB, ${r.peak?.threads} threads, ${r.ms.toFixed(0)} ms\n`);
      if (r.peak && (!worst || r.peak.rssKb > worst.rssKb)) worst = r.peak;
    }
  server.close();
  rmSync(WORK, { recursive: true, force: true });
  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    const mid = Math.floor(s.length / 2);
    return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  };
  for (const cli of CLIS) {
    const h = hwms.get(cli) ?? [];
    process.stdout.write(`${cli}: VmHWM median ${mb(median(h))} MB (${mb(Math.min(...h))} to ${mb(Math.max(...h))}), time median ${median(times.get(cli) ?? []).toFixed(0)} ms\n`);
  }
  if (!worst) return;
  if (process.env.MEM_SMAPS) writeFileSync(process.env.MEM_SMAPS, worst.raw);
  const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);
  const list = (m: Map<string, number>): string =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .filter(([, kb]) => kb >= 100)
      .map(([k, kb]) => `    ${mb(kb).padStart(6)}  ${k}`)
      .join('\n');
  process.stdout.write(
    `largest sample: Rss ${mb(worst.rssKb)} MB, ${worst.threads} threads\n  file-backed ${mb(sum(worst.file))} MB\n${list(worst.file)}\n  anonymous ${mb(sum(worst.anon))} MB\n${list(worst.anon)}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

/**
 * npm run bench: stretcher against the shell pipeline a user would write, on the same machine in the same
 * run, contenders alternated. Prints medians, min/max, ratios and peak RSS, and writes bench/RESULTS.md's
 * measured section. BENCH_RUNS (default 5) sets the runs per contender; BENCH_SKIP_XL=1 skips the 4x
 * archive used for the memory check; BENCH_DIR puts the work tree (dest, TMPDIR, staging) on another
 * filesystem, such as a fresh ext4 with a journal (bench/fresh-ext4.sh); BENCH_ONLY=large,memory runs only
 * those groups and prints their medians without touching RESULTS.md; BENCH_NO_EXTRA_CA=1 runs every contender
 * without NODE_EXTRA_CA_CERTS (see EXTRA_CA below).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Fixture, fixture, zipFixture } from './fixtures.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.dirname(HERE);
const CLI = path.join(ROOT, 'dist', 'cli.js');
/** The memory group's floor: node doing the large deploy's I/O and nothing else (rss-floor.mjs). */
const FLOOR = 'node alone: download, sha256, gunzip, bare tar writes (rss-floor.mjs), empty dest';
const FIXTURES = path.join(HERE, 'fixtures');
// The trash must be on the work tree's filesystem: trees are renamed into it.
const WORK_ROOT = process.env.BENCH_DIR ? path.resolve(process.env.BENCH_DIR) : FIXTURES;
const WORK = path.join(WORK_ROOT, 'work');
const TRASH = path.join(WORK_ROOT, 'work-trash');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
// Node 20 builds its whole CA store at start-up once NODE_EXTRA_CA_CERTS is set (Node 24 waits for the first
// TLS connection): `node -e 0` took 0.10 to 0.14 s with this machine's 144-certificate bundle, 0.06 to 0.09 s
// with an empty file, 0.03 to 0.04 s without the variable, and 2 MB more. Nothing here uses TLS, and the shell
// pipeline never pays it; a sandbox that sets it for its proxy adds that to every node start measured. The
// startup group shows the cost; BENCH_NO_EXTRA_CA=1 leaves it out of every contender.
const EXTRA_CA = process.env.NODE_EXTRA_CA_CERTS;
const NO_EXTRA_CA = process.env.BENCH_NO_EXTRA_CA === '1';
const BASE_ENV: NodeJS.ProcessEnv = { ...process.env };
if (NO_EXTRA_CA) delete BASE_ENV.NODE_EXTRA_CA_CERTS;

interface Sample {
  ms: number;
  rssKb?: number;
  /** stretcher added a second writer thread (file creation was slow): more memory, and a sign of the disk's state. */
  twoWriters?: boolean;
}

interface Contender {
  name: string;
  group: string;
  setup?: () => void | Promise<void>;
  run: () => Promise<Sample>;
}

/** Runs a command; for a node process, polls /proc/<pid>/status for VmHWM (peak RSS). */
function timed(file: string, args: string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv; rss?: boolean } = {}): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, { env: { ...BASE_ENV, ...opts.env }, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    let twoWriters = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
      if (stderr.includes('a second writer thread joins')) twoWriters = true;
    });
    let rssKb = 0;
    const poll = opts.rss
      ? setInterval(() => {
          try {
            const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
            if (m) rssKb = Math.max(rssKb, Number(m[1]));
          } catch {
            // exited
          }
        }, 10)
      : undefined;
    child.stdin.end(opts.stdin ?? '');
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - started;
      if (poll) clearInterval(poll);
      if (code !== 0) return reject(new Error(`${file} ${args.join(' ')} exited ${code}\n${stderr}`));
      resolve({ ms, ...(opts.rss ? { rssKb } : {}), ...(twoWriters ? { twoWriters } : {}) });
    });
  });
}

/** The cores' time so far and the part of it stolen by the hypervisor for other guests (/proc/stat, in ticks). */
function cpuTicks(): { total: number; steal: number } {
  const fields = (/^cpu\s+(.*)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? '').trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal (guest times are already inside user and nice)
  return { total: fields.slice(0, 8).reduce((a, b) => a + b, 0), steal: fields[7] ?? 0 };
}

function fresh(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Whether the work tree's ext4 has a journal: without one, file creation slows after deletions. */
function journal(dir: string): string {
  const dev =
    execFileSync('df', ['--output=source', dir])
      .toString()
      .trim()
      .split('\n')
      .pop()
      ?.replace(/^\/dev\//, '') ?? '';
  if (!existsSync('/proc/fs/ext4/' + dev)) return '';
  const journals = existsSync('/proc/fs/jbd2') ? readdirSync('/proc/fs/jbd2') : [];
  return journals.some((j) => j.startsWith(`${dev}-`)) ? ', with a journal' : ', no journal (see "This machine\'s disk" below)';
}

/**
 * Moves a tree out of the way, to be deleted after the last run. This machine's ext4 has no journal, and
 * without one every inode allocation skips the inodes deleted in the last 60 to 300 seconds, reading each
 * one's deletion time (perf: recently_deleted() under ext4_create): deleting 10,000 files before a run made
 * that run's file creation up to 5x slower, more so after the shell pipeline, which leaves two trees. That
 * cost belongs to the benchmark's churn, not to any contender, so trees are deleted only at the end.
 */
let trashed = 0;
function discard(dir: string): void {
  if (!existsSync(dir)) return;
  mkdirSync(TRASH, { recursive: true });
  renameSync(dir, path.join(TRASH, String(trashed++)));
  // Unless that would fill the filesystem: BENCH_RUNS=9 trashed more than a 12 GiB tmpfs holds (ENOSPC).
  const { bavail, bsize } = statfsSync(WORK_ROOT);
  if (bavail * bsize < TRASH_ROOM) {
    process.stderr.write(`bench: under ${TRASH_ROOM / 2 ** 30} GiB free in ${WORK_ROOT}: emptying the trash now (untimed)\n`);
    fresh(TRASH);
  }
}
const TRASH_ROOM = 4 * 2 ** 30;

async function main(): Promise<void> {
  mkdirSync(FIXTURES, { recursive: true });
  fresh(WORK);
  fresh(TRASH);
  mkdirSync(WORK, { recursive: true });
  const fx: Record<string, Fixture> = {};
  for (const name of ['small', 'large', 'large-prev', ...(process.env.BENCH_SKIP_XL ? [] : ['xl'])] as const) fx[name] = fixture(FIXTURES, name);
  const largeZip = zipFixture(FIXTURES, fx.large as Fixture);
  if (!largeZip) process.stderr.write('bench: zip or unzip is not installed: the zip group is skipped\n');

  const server = createServer((req, res) => {
    const file = path.join(FIXTURES, path.basename(req.url ?? ''));
    try {
      const { size } = statSync(file);
      res.writeHead(200, { 'content-length': size });
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dest = path.join(WORK, 'dest');
  const tmp = path.join(WORK, 'tmp');
  const env = { TMPDIR: tmp, STRETCHER_STATE_DIR: path.join(WORK, 'state') };

  // The release strategy's dest is a symlink, with releases/ beside it.
  const releaseRoot = path.join(WORK, 'release');
  const manifest = (f: Fixture, strategy: string): string => {
    const file = path.join(WORK, `${f.name}-${strategy}.yml`);
    const to = strategy === 'release' ? path.join(releaseRoot, 'current') : dest;
    writeFileSync(file, `src: ${base}/${path.basename(f.archive)}\nchecksum: ${f.sha256}\ndest: ${to}\nsync_strategy: ${strategy}\n`);
    return file;
  };
  const prevTree = path.join(FIXTURES, 'large-prev-tree');
  // A fresh build of the previous version: 10% of the files differ in content, and every mtime differs from
  // the new archive's (a day older), so neither rsync nor stretcher can skip a file on size and mtime.
  const withPrevious = (): void => {
    discard(dest);
    execFileSync('rsync', ['-a', `${prevTree}/`, `${dest}/`]);
    execFileSync('find', [dest, '-exec', 'touch', '-h', '-d', '@' + String(Math.floor(Date.now() / 1000) - 86_400), '{}', '+']);
  };
  // The release strategy over the previous version: that version deployed as a release first (untimed).
  const withPreviousRelease = async (): Promise<void> => {
    discard(releaseRoot);
    mkdirSync(releaseRoot, { recursive: true });
    await timed(process.execPath, [CLI], { stdin: manifest(fx['large-prev'] as Fixture, 'release'), env });
  };
  const empty = (): void => {
    discard(dest);
    discard(releaseRoot);
    discard(tmp);
    mkdirSync(tmp, { recursive: true });
  };
  const stretcher = (f: Fixture, strategy: string) => (): Promise<Sample> => timed(process.execPath, [CLI], { stdin: manifest(f, strategy), env, rss: true });
  const shell = (f: Fixture) => (): Promise<Sample> => {
    const dl = path.join(tmp, 'archive');
    const dir = path.join(tmp, 'dir');
    const unpack = f.archive.endsWith('.zip') ? `unzip -q ${dl} -d ${dir}` : `tar xzf ${dl} -C ${dir}`;
    const script = `curl -sf -o ${dl} ${base}/${path.basename(f.archive)} && echo "${f.sha256}  ${dl}" | sha256sum -c --quiet && mkdir -p ${dir} && ${unpack} && rsync -a --delete ${dir}/ ${dest}/`;
    return timed('sh', ['-c', script]);
  };
  const commandsOnly = path.join(WORK, 'commands-only.yml');
  writeFileSync(commandsOnly, 'commands:\n  pre: ["true"]\n');

  const contenders: Contender[] = [
    { group: 'large', name: 'shell pipeline (curl, sha256sum, tar, rsync), empty dest', setup: empty, run: shell(fx.large as Fixture) },
    { group: 'large', name: 'stretcher rsync, empty dest', setup: empty, run: stretcher(fx.large as Fixture, 'rsync') },
    { group: 'large', name: 'stretcher mv, no dest', setup: empty, run: stretcher(fx.large as Fixture, 'mv') },
    {
      group: 'previous',
      name: 'shell pipeline, dest holds previous version',
      setup: () => {
        empty();
        withPrevious();
      },
      run: shell(fx.large as Fixture),
    },
    {
      group: 'previous',
      name: 'stretcher rsync, dest holds previous version',
      setup: () => {
        empty();
        withPrevious();
      },
      run: stretcher(fx.large as Fixture, 'rsync'),
    },
    {
      group: 'previous',
      name: 'stretcher mv, dest holds previous version',
      setup: () => {
        empty();
        withPrevious();
      },
      run: stretcher(fx.large as Fixture, 'mv'),
    },
    {
      group: 'previous',
      name: 'stretcher release, dest holds previous version',
      setup: async () => {
        empty();
        await withPreviousRelease();
      },
      run: stretcher(fx.large as Fixture, 'release'),
    },
    { group: 'small', name: 'shell pipeline, small archive', setup: empty, run: shell(fx.small as Fixture) },
    { group: 'small', name: 'stretcher rsync, small archive', setup: empty, run: stretcher(fx.small as Fixture, 'rsync') },
    { group: 'startup', name: 'node -e 0', run: () => timed(process.execPath, ['-e', '0']) },
    ...(EXTRA_CA && !NO_EXTRA_CA
      ? [{ group: 'startup', name: 'node -e 0, NODE_EXTRA_CA_CERTS unset', run: () => timed(process.execPath, ['-e', '0'], { env: { NODE_EXTRA_CA_CERTS: undefined }, rss: true }) }]
      : []),
    { group: 'startup', name: 'stretcher --version', run: () => timed(process.execPath, [CLI, '--version'], { rss: true }) },
    { group: 'startup', name: 'stretcher commands-only deploy (file://)', run: () => timed(process.execPath, [CLI], { stdin: commandsOnly, env, rss: true }) },
  ];
  if (largeZip) {
    contenders.push(
      { group: 'zip', name: 'shell pipeline, zip (curl, sha256sum, unzip, rsync), empty dest', setup: empty, run: shell(largeZip) },
      { group: 'zip', name: 'stretcher rsync, zip, empty dest', setup: empty, run: stretcher(largeZip, 'rsync') },
    );
  }
  if (fx.xl) contenders.push({ group: 'memory', name: 'stretcher rsync, 4x archive, empty dest', setup: empty, run: stretcher(fx.xl, 'rsync') });
  // For scale: the peak RSS node itself reaches doing the large deploy's I/O, and nothing else (rss-floor.mjs).
  const large = fx.large as Fixture;
  contenders.push({
    group: 'memory',
    name: FLOOR,
    setup: empty,
    run: () => timed(process.execPath, ['--expose-gc', path.join(HERE, 'rss-floor.mjs'), `${base}/${path.basename(large.archive)}`, large.sha256, dest], { rss: true }),
  });

  const samples = new Map<string, Sample[]>(contenders.map((c) => [c.name, []]));
  // Group by group, alternating inside each: one run of each contender per round, so drift on a noisy
  // machine hits all of them alike. The groups whose contenders delete trees (stretcher removing its staging
  // tree or the old dest) come last: on this disk deletions slow every file creation for minutes after
  // (see "This machine's disk" in RESULTS.md), and the other groups delete nothing. The small groups come
  // first: after the 4x archive's gigabytes of trees, the small deploy took 346 ms instead of 215 ms. The zip
  // comes after the 4x archive: before it, its trees filled the trash, which was emptied just before the 4x
  // deploy, whose first rounds then took 4.2 to 4.6 s instead of 2.1.
  const order = ['small', 'startup', 'large', 'memory', 'zip', 'previous'];
  const unordered = contenders.filter((c) => !order.includes(c.group));
  if (unordered.length) throw new Error(`bench: no place in the run order for ${unordered.map((c) => c.group).join(', ')}`);
  const only = process.env.BENCH_ONLY?.split(',');
  // On a shared VM the hypervisor may run other guests on these cores: the share it took is reported, as
  // the figures mean little when it is large.
  const ticksBefore = cpuTicks();
  for (const group of order.filter((g) => !only || only.includes(g))) {
    const members = contenders.filter((x) => x.group === group);
    for (let round = 0; round < RUNS; round++) {
      // Each round starts one contender further on, so that none always runs right after the same one: on a
      // fresh ext4, with a fixed order, stretcher rsync (always right after the shell pipeline, which writes
      // the tree three times) took 2170 ms against mv's 1655 for the same work; rotated, the runs right after
      // the shell pipeline were four of the five slowest, whichever contender (bench/RESULTS.md).
      const rotated = [...members.slice(round % members.length), ...members.slice(0, round % members.length)];
      for (const c of rotated) {
        await c.setup?.();
        // Flush the previous run's writes (and, on a disk mounted with discard, its TRIMs) so that they are
        // not billed to this one.
        execFileSync('sync');
        const s = await c.run();
        samples.get(c.name)?.push(s);
        process.stderr.write(`round ${round + 1}/${RUNS} ${c.name}: ${s.ms.toFixed(0)} ms${s.rssKb ? `, ${(s.rssKb / 1024).toFixed(0)} MB` : ''}${s.twoWriters ? ', 2 writer threads' : ''}\n`);
      }
    }
  }
  const ticksAfter = cpuTicks();
  const stolen = ticksAfter.total > ticksBefore.total ? (ticksAfter.steal - ticksBefore.steal) / (ticksAfter.total - ticksBefore.total) : 0;
  const steal = `CPU steal during the runs (time the hypervisor gave other guests): ${(stolen * 100).toFixed(1)}% of the cores' time`;
  process.stderr.write(`${steal}\n`);
  server.close();
  fresh(WORK);
  fresh(TRASH);

  const median = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    const mid = Math.floor(s.length / 2);
    return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  };
  const stats = (name: string) => {
    const xs = (samples.get(name) ?? []).map((s) => s.ms);
    const rss = (samples.get(name) ?? []).map((s) => s.rssKb ?? 0);
    return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), rssMb: Math.max(...rss) / 1024 };
  };
  if (only) {
    for (const [name, xs] of samples) {
      if (xs.length === 0) continue;
      const st = stats(name);
      const two = xs.filter((x) => x.twoWriters).length;
      process.stdout.write(
        `${name}: median ${st.median.toFixed(0)} ms (${st.min.toFixed(0)} to ${st.max.toFixed(0)})${st.rssMb ? `, peak RSS ${st.rssMb.toFixed(1)} MB` : ''}${two ? `, 2 writer threads in ${two} of ${xs.length} runs` : ''}\n`,
      );
    }
    return;
  }
  const refFor: Record<string, string> = {
    large: 'shell pipeline (curl, sha256sum, tar, rsync), empty dest',
    zip: 'shell pipeline, zip (curl, sha256sum, unzip, rsync), empty dest',
    small: 'shell pipeline, small archive',
    startup: 'node -e 0',
    memory: 'shell pipeline (curl, sha256sum, tar, rsync), empty dest',
    previous: 'shell pipeline, dest holds previous version',
  };
  const rows = contenders.map((c) => {
    const st = stats(c.name);
    const ref = refFor[c.group] as string;
    return { ...c, ...st, ratio: st.median / stats(ref).median, ref };
  });
  const table = [
    '| contender | median | min | max | ratio | vs | peak RSS |',
    '|---|---:|---:|---:|---:|---|---:|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.median.toFixed(0)} ms | ${r.min.toFixed(0)} | ${r.max.toFixed(0)} | ${r.ratio.toFixed(2)}x | ${r.ref === r.name ? '(reference)' : r.ref.split(' (')[0]} | ${r.rssMb ? `${r.rssMb.toFixed(1)} MB` : ''} |`,
    ),
  ].join('\n');
  const get = (name: string) => rows.find((r) => r.name === name);
  const rssLarge = get('stretcher rsync, empty dest')?.rssMb ?? 0;
  const rssXl = get('stretcher rsync, 4x archive, empty dest')?.rssMb;
  const rssFloor = get(FLOOR)?.rssMb;
  const largeRss = Math.max(...rows.filter((r) => r.group === 'large' || r.group === 'previous').map((r) => r.rssMb));
  const target = (label: string, ok: boolean, figure: string) => `| ${label} | ${figure} | ${ok ? 'met' : '**not met**'} |`;
  const targets = [
    '| target | measured | |',
    '|---|---|---|',
    target(
      'update (dest holds previous version), rsync <= 0.5x shell',
      (get('stretcher rsync, dest holds previous version')?.ratio ?? 9) <= 0.5,
      `${get('stretcher rsync, dest holds previous version')?.ratio.toFixed(3)}x`,
    ),
    target('large, rsync, empty dest <= 0.55x shell', (get('stretcher rsync, empty dest')?.ratio ?? 9) <= 0.55, `${get('stretcher rsync, empty dest')?.ratio.toFixed(3)}x`),
    target('large, mv <= 0.55x shell', (get('stretcher mv, no dest')?.ratio ?? 9) <= 0.55, `${get('stretcher mv, no dest')?.ratio.toFixed(3)}x`),
    target('peak RSS <= 64 MB (large archive)', largeRss <= 64, `${largeRss.toFixed(1)} MB at most`),
    rssXl === undefined
      ? '| peak RSS within 10% at 4x archive | skipped (BENCH_SKIP_XL) | |'
      : target(
          'peak RSS within 10% at 4x archive',
          rssXl <= 64 * 1.1 && Math.abs(rssXl - rssLarge) <= rssLarge * 0.1,
          `${rssLarge.toFixed(1)} MB -> ${rssXl.toFixed(1)} MB (${(((rssXl - rssLarge) / rssLarge) * 100).toFixed(1)}%)`,
        ),
    ...(rssFloor ? [`| (for scale) peak RSS of node alone doing the large deploy's I/O, bench/rss-floor.mjs | ${rssFloor.toFixed(1)} MB | |`] : []),
    target('stretcher --version <= 2x node -e 0', (get('stretcher --version')?.ratio ?? 9) <= 2, `${get('stretcher --version')?.ratio.toFixed(3)}x`),
    target('commands-only file:// deploy <= 3x node -e 0', (get('stretcher commands-only deploy (file://)')?.ratio ?? 9) <= 3, `${get('stretcher commands-only deploy (file://)')?.ratio.toFixed(3)}x`),
  ].join('\n');
  const machine = [
    `- CPU: ${os.cpus()[0]?.model ?? 'unknown'}, ${os.cpus().length} cores; memory ${(os.totalmem() / 1024 ** 3).toFixed(0)} GiB; ${steal}`,
    `- work tree (dest, TMPDIR, staging): ${execFileSync('df', ['--output=fstype,source', WORK_ROOT]).toString().trim().split('\n').pop()?.trim().replace(/\s+/, ' on ')}${journal(WORK_ROOT)}${process.env.BENCH_DIR ? ` (BENCH_DIR=${process.env.BENCH_DIR})` : ''}`,
    `- node ${process.version}; ${execFileSync('rsync', ['--version']).toString().split('\n')[0]}; ${execFileSync('tar', ['--version']).toString().split('\n')[0]}`,
    `- fixtures: large ${fx.large?.files} files, ${((fx.large?.bytes ?? 0) / 1e6).toFixed(0)} MB unpacked, ${(statSync(fx.large?.archive ?? '').size / 1e6).toFixed(0)} MB gzip'd; small ${fx.small?.files} files, ${((fx.small?.bytes ?? 0) / 1e3).toFixed(0)} kB${fx.xl ? `; 4x: ${fx.xl.files} files, ${(fx.xl.bytes / 1e6).toFixed(0)} MB unpacked` : ''}`,
    `- NODE_EXTRA_CA_CERTS: ${EXTRA_CA ? (NO_EXTRA_CA ? 'set here, unset for every contender (BENCH_NO_EXTRA_CA=1)' : 'set, so every node start measured builds its CA store first (the startup rows show the cost; BENCH_NO_EXTRA_CA=1 leaves it out)') : 'not set'}`,
    `- ${RUNS} runs per contender, alternated; served over HTTP from 127.0.0.1; ${new Date().toISOString().slice(0, 10)}`,
  ].join('\n');
  const report = `## Measured\n\n${machine}\n\n${table}\n\n### Targets\n\n${targets}\n`;
  process.stdout.write(`\n${report}`);
  const results = path.join(HERE, 'RESULTS.md');
  const previous = (() => {
    try {
      return readFileSync(results, 'utf8');
    } catch {
      return '# Benchmark results\n\n## Measured\n';
    }
  })();
  const head = previous.split('## Measured')[0];
  const tail = previous.includes('## Where time goes') ? `\n## Where time goes${previous.split('## Where time goes')[1]}` : '';
  writeFileSync(results, `${head}${report}${tail}`);
  process.stderr.write(`\nwrote ${results}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { BIN_UNDER_TEST, cleanEnv } from '../helpers/cli.js';
import { TestServer } from '../helpers/http.js';
import { S3_KEY, S3_SECRET, TestS3 } from '../helpers/s3.js';
import { listTree, Scenario, WRITER_THREADS } from '../helpers/scenario.js';
import { sha1, tgz } from '../helpers/tar.js';
import { zip } from '../helpers/zip.js';

// The one-file executable as a server gets it: a copy alone in a directory with no node_modules anywhere
// above it, NODE_PATH unset, every file it opens traced. Each part that is loaded lazily (got for http,
// the S3 SDK, yauzl for zip, node-tar's writer threads, ajv for validate) is exercised once.
const skip = BIN_UNDER_TEST ? false : 'tests the one-file executable: set STRETCHER_TEST_BIN (npm run build:exe)';
const hasStrace = spawnSync('strace', ['-V']).status === 0;

/** Past this many files a tar's files go to the writer threads, with WRITER_THREADS (unpack-threads.test.ts). */
const FILLER = Array.from({ length: 800 }, (_, i) => ({ path: `fill/d${i % 20}/f${i}.txt`, body: `file ${i}\n` }));

interface Traced {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Every path the process and its threads opened, stat'ed or executed. */
  paths: string[];
}

function runAlone(exe: string, cwd: string, trace: string, args: string[], stdin: string, env: NodeJS.ProcessEnv): Promise<Traced> {
  const { NODE_PATH: _unset, NODE_OPTIONS: _alsoUnset, ...rest } = env;
  const [file, argv] = hasStrace ? ['strace', ['-f', '-qq', '-e', 'trace=%file', '-o', trace, exe, ...args]] : [exe, args];
  return new Promise((resolve, reject) => {
    const child = spawn(file as string, argv as string[], { cwd, env: rest, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(stdin);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const paths = hasStrace ? [...readFileSync(trace, 'utf8').matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] as string) : [];
      resolve({ code, stdout, stderr, paths });
    });
  });
}

test('the executable alone: http tar.gz on writer threads, zip, s3 and validate, with nothing read from node_modules', { skip }, async (t) => {
  const s = new Scenario(t);
  // A directory of its own under TMPDIR, with no node_modules in it or above it.
  const home = path.join(s.root, 'opt');
  mkdirSync(home);
  for (let dir = home; ; dir = path.dirname(dir)) {
    assert.ok(!existsSync(path.join(dir, 'node_modules')), `${dir} has a node_modules: the test would prove nothing`);
    if (dir === path.dirname(dir)) break;
  }
  mkdirSync(s.dest);
  const exe = path.join(home, 'stretcher');
  copyFileSync(BIN_UNDER_TEST as string, exe);
  spawnSync('chmod', ['0755', exe]);

  const tarball = tgz([{ path: 'VERSION', body: 'tgz\n' }, ...FILLER, { path: 'last/after-threads.txt', body: 'late\n' }]);
  const zipped = zip([{ path: 'index.html', body: 'zip\n' }]);
  const http = await TestServer.start(t);
  http.file('/app.tar.gz', tarball).file('/app.zip', zipped);
  const s3 = await TestS3.start(t, ['releases']);
  const fromS3 = tgz([{ path: 'VERSION', body: 's3\n' }]);
  await s3.put('releases', 'app.tar.gz', fromS3);
  const s3env = { AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET, AWS_REGION: 'us-east-1', AWS_ENDPOINT_URL_S3: s3.endpoint };
  const env = cleanEnv({ TMPDIR: s.tmp, STRETCHER_STATE_DIR: s.state, ...s3env, ...WRITER_THREADS });

  const manifest = (name: string, yaml: string): string => s.manifest(yaml, name);
  const deploys: [string, string, string[]][] = [
    [manifest('tgz.yml', `src: ${http.base}/app.tar.gz\nchecksum: ${sha1(tarball)}\ndest: ${s.dest}/tgz\n`), 'tgz', ['VERSION', 'last/after-threads.txt']],
    [manifest('zip.yml', `src: ${http.base}/app.zip\nchecksum: ${sha1(zipped)}\ndest: ${s.dest}/zip\n`), 'zip', ['index.html']],
    [manifest('s3.yml', `src: s3://releases/app.tar.gz\nchecksum: ${sha1(fromS3)}\ndest: ${s.dest}/s3\n`), 's3', ['VERSION']],
  ];
  const opened: string[] = [];
  for (const [file, name, expected] of deploys) {
    const r = await runAlone(exe, home, path.join(s.out, `${name}.trace`), [], `${file}\n`, env);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    for (const p of expected) assert.ok(existsSync(path.join(s.dest, name, p)), `${name}: ${p} deployed`);
    opened.push(...r.paths);
  }
  assert.equal(readFileSync(path.join(s.dest, 'tgz', 'last', 'after-threads.txt'), 'utf8'), 'late\n');
  assert.equal(listTree(path.join(s.dest, 'tgz')).filter((p) => p.endsWith('.txt')).length, FILLER.length + 1);
  assert.equal(readFileSync(path.join(s.dest, 's3', 'VERSION'), 'utf8'), 's3\n');

  const bad = await runAlone(exe, home, path.join(s.out, 'validate.trace'), ['validate', manifest('bad.yml', 'src: x.tgz\ndest: relative\n')], '', env);
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(bad.stdout + bad.stderr, /dest "relative" must be an absolute path/);
  opened.push(...bad.paths);

  const version = await runAlone(exe, home, path.join(s.out, 'version.trace'), ['--version'], '', env);
  assert.match(version.stdout, /^stretcher version \d+\.\d+\.\d+\S* \(node v(2[4-9]|[3-9]\d)\.\d+\.\d+\)\n$/, 'an LTS Node is embedded');
  opened.push(...version.paths);

  if (!hasStrace) return t.skip('strace is not installed: the deploys ran, but what they opened was not traced');
  assert.ok(opened.includes(s.tmp) || opened.some((p) => p.startsWith(s.dest)), 'the trace saw the deploys');
  assert.deepEqual(
    opened.filter((p) => /node_modules|\.js$|\.cjs$|\.mjs$/.test(p)),
    [],
    'no module file opened',
  );
});

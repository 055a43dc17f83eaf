import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BIN_UNDER_TEST, cleanEnv } from '../helpers/cli.js';
import { listTree, Scenario } from '../helpers/scenario.js';
import { tar } from '../helpers/tar.js';

const exec = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** npm must not inherit `npm test`'s own npm_config_* settings (prefix, cache overrides...). */
function npmEnv(): NodeJS.ProcessEnv {
  const env = cleanEnv();
  for (const k of Object.keys(env)) if (/^npm_/i.test(k)) delete env[k];
  return env;
}

// The npm package is what this builds and runs: nothing here changes with the binary under test.
const skip = BIN_UNDER_TEST ? 'tests the npm package, not STRETCHER_TEST_BIN' : false;

test('npm pack yields a package that installs on a clean prefix and deploys from there', { skip }, async (t) => {
  const s = new Scenario(t);
  const packDir = path.join(s.root, 'pack');
  mkdirSync(packDir);
  const { stdout: packed } = await exec('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], { cwd: ROOT, env: npmEnv(), maxBuffer: 1 << 24 });
  const info = JSON.parse(packed.slice(packed.indexOf('['))) as { filename: string; files: { path: string }[] }[];
  const files = (info[0]?.files ?? []).map((f) => f.path);
  assert.ok(files.includes('dist/cli.js'));
  assert.ok(files.includes('schemas/manifest.schema.json'));
  // The exact dependency tree we test ships with the package: a global install does not re-resolve it.
  assert.ok(files.includes('npm-shrinkwrap.json'), files.join(' '));
  assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('src/') || f.endsWith('.map')), files.join(' '));

  // Install as the README says: unpack, `npm ci --omit=dev` against the shipped shrinkwrap, link the bin.
  // (`npm install -g x.tgz` would re-resolve every transitive range from the registry: npm ignores a local
  // tarball's shrinkwrap, npm/cli#5325, so the tree would not be the one we tested.)
  const prefix = path.join(s.root, 'prefix');
  const home = path.join(s.root, 'opt', 'stretcher');
  mkdirSync(home, { recursive: true });
  await exec('tar', ['xzf', path.join(packDir, info[0]?.filename as string), '-C', home, '--strip-components=1']);
  await exec('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], { cwd: home, env: npmEnv(), maxBuffer: 1 << 24 });
  assert.ok(!existsSync(path.join(home, 'node_modules', 'typescript')), 'no dev dependencies installed');
  await exec('npm', ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', '--offline', home], { env: npmEnv(), maxBuffer: 1 << 24 });
  const bin = path.join(prefix, 'bin', 'stretcher');
  assert.ok(existsSync(bin));
  const version = await exec(bin, ['--version'], { env: npmEnv() });
  assert.match(version.stdout, /^stretcher version \d+\.\d+\.\d+/);

  s.manifest(s.archive(tar([{ path: 'from-package', body: 'ok' }])));
  const child = execFile(bin, [], { env: { ...npmEnv(), TMPDIR: s.tmp, STRETCHER_STATE_DIR: s.state } });
  child.stdin?.end(`file://${s.root}/manifest.yml\n`);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0);
  assert.deepEqual(listTree(s.dest), ['from-package']);
  assert.equal(readFileSync(path.join(s.dest, 'from-package'), 'utf8'), 'ok');
});

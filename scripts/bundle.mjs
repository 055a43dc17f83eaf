// Bundles src/ into dist/ (npm run build, after tsc has type-checked it).
//
// Why: every deploy starts a fresh node process, which loaded about 210 modules one file at a time (yaml
// about 70, got and its dependencies about 80). Bundled, a small HTTP deploy takes 0.22 s instead of
// 0.30 s, and the large benchmark deploy 0.12 s less: that time was on the critical path, on a thread
// that had nothing else to do yet (bench/RESULTS.md). One file per lazily loaded part keeps the
// rule that a deploy loads only what it uses: the S3 SDK stays outside the bundle and is imported from
// node_modules only by an s3:// deploy, and got, node-tar and yauzl are chunks loaded on first use.
//
// Not minified: it gained nothing measurable (bench/RESULTS.md), and an unminified bundle keeps the stack
// trace in a bug report readable, with no source map to ship.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });

await build({
  entryPoints: {
    cli: 'src/cli/main.ts',
    // A thread of its own: the writer pool starts it by URL, as dist/unpack-worker.js.
    'unpack-worker': 'src/unpack/writer/worker.ts',
  },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Loaded only by s3:// deploys, from node_modules: the SDK is large, and bundling it would gain nothing
  // for the deploys that never load it.
  external: ['@aws-sdk/*', '@smithy/*', 'hpagent'],
  // Bundled CommonJS packages (yauzl, minimatch's deps...) call require(): give ESM chunks one.
  banner: { js: "import { createRequire as __stretcherRequire } from 'node:module'; const require = __stretcherRequire(import.meta.url);" },
  // No source maps: the bundle is not minified, so its stack traces read as they are.
  sourcemap: false,
  // Beside the entries, not in a folder: chunks resolve ./unpack-worker.js from their own URL.
  chunkNames: '[name]-[hash]',
  // The version is compiled in: the program reads no file of its own at run time.
  define: { STRETCHER_VERSION: JSON.stringify(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version) },
  logLevel: 'warning',
});

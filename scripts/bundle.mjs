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
import { fileURLToPath } from 'node:url';

// got's @sindresorhus/is builds two Intl.ListFormat objects when it is imported, for its error messages only.
// Creating them loads ICU's locale data: 4 MB more of the node binary resident in every HTTP deploy
// (bench/RESULTS.md). Here they are built on first use instead; the build fails
// if an upgrade changes those lines, so that this is looked at again rather than silently dropped.
const lazyListFormat = {
  name: 'lazy-intl-list-format',
  setup(b) {
    b.onLoad({ filter: /[\\/]@sindresorhus[\\/]is[\\/]distribution[\\/]index\.js$/ }, (args) => {
      let text = readFileSync(args.path, 'utf8');
      for (const name of ['andFormatter', 'orFormatter']) {
        const eager = new RegExp(`const ${name} = (new Intl\\.ListFormat\\([^;]*\\));`);
        if (!eager.test(text)) throw new Error(`bundle: ${args.path} no longer builds ${name} as expected; see lazyListFormat in scripts/bundle.mjs`);
        text = text.replace(eager, `let ${name}Made;\nconst ${name} = { format: (values) => (${name}Made ??= $1).format(values) };`);
      }
      return { contents: text, loader: 'js' };
    });
  },
};

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true });

// got imports http2-wrapper (its `http2` option: node:http2, nghttp2, resolve-alpn) and cacheable-request (its
// `cache` option: keyv, http-cache-semantics, normalize-url) at load time; stretcher sets neither option.
// Both are replaced by modules that throw if they are ever used. The got chunk: 361 KB -> 205 KB; with the
// lazy ListFormat above, the large HTTP deploy's peak RSS 102.4 -> 96.8 MB (bench/RESULTS.md).
const unusedGotFeatures = {
  name: 'unused-got-features',
  setup(b) {
    const stubs = {
      'http2-wrapper': `const unused = () => { throw new Error('stretcher is built without got\\'s http2 option'); };
export default { get auto() { return unused(); }, get globalAgent() { return unused(); } };`,
      'cacheable-request': `export class CacheError extends Error {}
export default class CacheableRequest { constructor() { throw new Error('stretcher is built without got\\'s cache option'); } }`,
    };
    b.onResolve({ filter: /^(http2-wrapper|cacheable-request)$/ }, (args) => (/[\\/]got[\\/]/.test(args.importer) ? { path: args.path, namespace: 'unused-got-feature' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'unused-got-feature' }, (args) => ({ contents: stubs[args.path], loader: 'js' }));
  },
};

// yaml's package gives node its CommonJS build, whose modules esbuild must keep whole; its ES module build
// (the one it gives browsers, the same code less two debug switches, LOG_TOKENS and LOG_STREAM, and with
// console.warn for process.emitWarning, which parseDocument never calls) lets the bundle leave out what
// stretcher does not use: 264 -> 198 KB, and every deploy parses a manifest (bench/RESULTS.md).
const yamlModules = {
  name: 'yaml-es-modules',
  setup(b) {
    b.onResolve({ filter: /^yaml$/ }, () => ({ path: fileURLToPath(new URL('../node_modules/yaml/browser/dist/index.js', import.meta.url)) }));
  },
};

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
  plugins: [lazyListFormat, unusedGotFeatures, yamlModules],
  logLevel: 'warning',
});

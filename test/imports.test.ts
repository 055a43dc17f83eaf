import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The layout's promise (README, Development): imports point down the pipeline or into shared leaves,
 * never back up, and nothing imports itself round a circle, type-only imports and lazy import()s
 * included.
 */

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/** What each stage may import, besides itself. The top (deploy.ts, watch.ts) and cli/ are above them all. */
const MAY_IMPORT: Record<string, readonly string[]> = {
  shared: [],
  transfer: ['shared'],
  event: ['shared'],
  manifest: ['shared', 'transfer'],
  unpack: ['shared', 'transfer', 'manifest'],
  hooks: ['shared', 'manifest'],
  host: ['shared', 'transfer'],
  sync: ['shared', 'manifest', 'hooks', 'host'],
  fleet: ['shared'],
  '.': ['shared', 'transfer', 'event', 'manifest', 'unpack', 'hooks', 'host', 'sync', 'fleet', '.'],
  cli: ['shared', 'transfer', 'event', 'manifest', 'unpack', 'hooks', 'host', 'sync', 'fleet', '.'],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return sourceFiles(file);
    return name.endsWith('.ts') && name !== 'compiled-schema.ts' ? [file] : [];
  });
}

/** Every relative module a file refers to: static and type-only imports, re-exports and import(). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1] as string);
  return specs.map((s) => path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts')));
}

const stageOf = (file: string): string => path.relative(SRC, file).split(path.sep).slice(0, -1)[0] ?? '.';
const graph = new Map(sourceFiles(SRC).map((f) => [f, importsOf(f).filter((t) => !t.endsWith('compiled-schema.ts'))] as const));

test('imports point down the pipeline: each stage imports only the stages below it', () => {
  const wrong: string[] = [];
  for (const [file, targets] of graph) {
    const from = stageOf(file);
    for (const target of targets) {
      const to = stageOf(target);
      if (to !== from && !(MAY_IMPORT[from] ?? []).includes(to)) wrong.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, target)}`);
    }
  }
  assert.deepEqual(wrong, []);
  assert.ok(graph.size > 50, `the check read the source tree (${graph.size} files)`);
});

test('no import cycles, type-only imports and import() included', () => {
  for (const targets of graph.values()) for (const t of targets) assert.ok(graph.has(t), `${t} exists`);
  // Tarjan's strongly connected components: any with more than one file is a cycle.
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    indices.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, indices.get(w) as number));
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(path.relative(SRC, w));
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!indices.has(v)) visit(v);
  assert.deepEqual(cycles, []);
});

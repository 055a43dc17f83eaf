import { LineCounter, type Scalar, isMap, isPair, isScalar, isSeq, parseDocument, visit, type Document } from 'yaml';

/** Keys whose YAML scalars keep their native type; every other scalar is read as the text written. */
const NATIVE_KEYS = new Set(['dest_mode', 'keep_releases', 'rollback_on_failure', 'serial']);

export interface ParsedYaml {
  data: unknown;
  /** The document as YAML gave it, before empty values were dropped and dest_mode read as octal. */
  raw: unknown;
  /** 1-based line of the node at a key path, for messages. */
  lineOf(path: readonly (string | number)[]): number | undefined;
  /** The text dest_mode was written as, when written as a plain scalar: to judge it (dest-mode.ts). */
  destModeSource?: string;
}

export class YamlSyntaxError extends Error {}

/**
 * Go stretcher decodes with go-yaml v2, i.e. YAML 1.1: `dest_mode: 0711` is octal there and decimal in
 * YAML 1.2, so parsing is pinned to 1.1. go-yaml also decodes any scalar into a string field as written,
 * so `checksum: 4e12345...` (a float to YAML) or `- yes` in a command list stay text: do the same.
 */
export function parseYaml(text: string): ParsedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), { version: '1.1', lineCounter, uniqueKeys: true });
  const first = doc.errors[0];
  // The first line of the message ends "at line L, column C:"; the rest is a code frame.
  if (first) throw new YamlSyntaxError((first.message.split('\n')[0] ?? '').replace(/:$/, ''));
  readScalarsAsWritten(doc);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // Unresolved aliases and alias bombs surface only when the document is converted.
    throw new YamlSyntaxError((err as Error).message === 'Excessive alias count indicates a resource exhaustion attack' ? 'too many alias expansions (a YAML bomb?)' : (err as Error).message);
  }
  const raw = structuredClone(data);
  dropNulls(data);
  octalDestMode(data);
  const destMode = isMap(doc.contents) ? doc.contents.get('dest_mode', true) : undefined;
  return {
    data,
    raw,
    lineOf: (path) => lineOfPath(doc, lineCounter, path),
    // Quoted, it is text, read as octal (octalDestMode): only a plain scalar's spelling says how YAML read it.
    ...(isScalar(destMode) && destMode.type === 'PLAIN' && destMode.source !== undefined ? { destModeSource: String(destMode.source) } : {}),
  };
}

/**
 * The line of what a key path names: for a mapping key, the key itself (where a reader looks for a typo);
 * for a list item, the item. A path into something missing stops at the nearest existing parent.
 */
function lineOfPath(doc: Document, lines: LineCounter, path: readonly (string | number)[]): number | undefined {
  let node: unknown = doc.contents;
  let offset = (node as { range?: number[] } | null)?.range?.[0];
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      offset = (pair.key as Scalar).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      node = node.items[segment];
      offset = (node as { range?: number[] } | undefined)?.range?.[0] ?? offset;
    } else break;
  }
  return offset === undefined ? undefined : lines.linePos(offset).line;
}

function readScalarsAsWritten(doc: Document): void {
  visit(doc, {
    Scalar(key, node, path) {
      if (key === 'key' || typeof node.value === 'string' || node.value === null) return;
      const parent = path[path.length - 1];
      const isTopLevelValue = path.length === 3 && isPair(parent) && isScalar(parent.key);
      if (isTopLevelValue && NATIVE_KEYS.has(String((parent.key as Scalar).value))) return;
      if (node.source !== undefined) node.value = String(node.source);
    },
  });
}

/**
 * `dest_mode: "0711"` and `dest_mode: 0o711` reach here as strings (YAML 1.1 has no 0o prefix); both
 * mean octal, as a mode written as text always does (chmod 711).
 */
function octalDestMode(data: unknown): void {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return;
  const record = data as Record<string, unknown>;
  const mode = record.dest_mode;
  if (typeof mode !== 'string') return;
  const m = /^\s*(?:0o|0)?([0-7]+)\s*$/i.exec(mode);
  if (m) record.dest_mode = parseInt(m[1] as string, 8);
}

/** `src:` with nothing after it means "no src" to Go stretcher; treat empty values as absent. */
function dropNulls(data: unknown): void {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return;
  const record = data as Record<string, unknown>;
  for (const [k, v] of Object.entries(record)) {
    if (v === null) delete record[k];
    else if (k === 'commands') dropNulls(v);
  }
}

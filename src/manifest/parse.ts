import { LineCounter, Scalar, isPair, isScalar, isMap, parseDocument, visit, type Document } from 'yaml';

/** Keys whose YAML scalars keep their native type; every other scalar is read as the text written. */
const NATIVE_KEYS = new Set(['dest_mode']);

export interface ParsedYaml {
  data: unknown;
  /** 1-based line of the node at a key path, for messages. */
  lineOf(path: readonly (string | number)[]): number | undefined;
  /** The text dest_mode was written as, to warn about decimal look-alikes. */
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
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), { version: '1.1', lineCounter, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const pos = first.linePos?.[0];
    const at = pos ? `line ${pos.line}, column ${pos.col}: ` : '';
    throw new YamlSyntaxError(`${at}${first.message.split('\n')[0]}`);
  }
  readScalarsAsWritten(doc);
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  dropNulls(data);
  const destMode = isMap(doc.contents) ? doc.contents.get('dest_mode', true) : undefined;
  return {
    data,
    lineOf(path) {
      let node: unknown = doc.getIn(path, true);
      // A path into a missing key: point at its nearest existing parent.
      for (let n = path.length - 1; node === undefined && n >= 0; n--) node = doc.getIn(path.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | undefined)?.range;
      return range ? lineCounter.linePos(range[0]).line : undefined;
    },
    ...(isScalar(destMode) && destMode.source !== undefined ? { destModeSource: String(destMode.source) } : {}),
  };
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

/** `src:` with nothing after it means "no src" to Go stretcher; treat empty values as absent. */
function dropNulls(data: unknown): void {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return;
  const record = data as Record<string, unknown>;
  for (const [k, v] of Object.entries(record)) {
    if (v === null) delete record[k];
    else if (k === 'commands') dropNulls(v);
  }
}

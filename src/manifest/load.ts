import type { KeyObject } from 'node:crypto';
import { StretcherError } from '../shared/errors.js';
import type { Location } from '../shared/location.js';
import { fetchBytes, type Fetched, type TransferOptions } from '../transfer/download.js';
import { ManifestError } from './errors.js';
import { type ParsedYaml, parseYaml, YamlSyntaxError } from './parse.js';
import { checkSignature, signatureUrl, SignatureError } from './signature.js';
import { culprits, structureChange } from './structure.js';
import { type Expanded, type Expansion, PLACEHOLDER, scanTemplate } from './template.js';
import type { Manifest } from './types.js';
import { destOf, failureCommandsOf, validateManifest } from './validate.js';

/** Manifests are a page of YAML; anything far larger is a mistake or an attack, not a manifest. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

export interface LoadedManifest {
  manifest: Manifest;
  warnings: string[];
}

/** Template, YAML, schema and rules over a manifest's bytes. Throws ManifestError listing every problem. */
export function manifestFromText(text: string, location: Location, env: NodeJS.ProcessEnv, baseUrl = location.href): LoadedManifest {
  const where = location.shown;
  let expansion: Expansion;
  try {
    expansion = scanTemplate(text, env, where);
  } catch (err) {
    throw new ManifestError(where, [(err as Error).message.replace(`${where}:`, 'line ')]);
  }
  const asWritten = expansion.actions.length ? yamlOf(expansion.marked, where) : undefined;
  let parsed: ParsedYaml;
  try {
    parsed = parseYaml(expansion.text);
  } catch (err) {
    if (!(err instanceof YamlSyntaxError)) throw err;
    // YAML the author wrote, broken by a value spliced into it.
    if (asWritten) {
      const culprits = yamlBreakers(expansion);
      const named = culprits.length ? culprits : expansion.actions;
      const line = culprits.length === 1 ? `line ${culprits[0]?.line}: ` : '';
      throw new ManifestError(where, [
        `${line}the value of ${[...new Set(named.flatMap((a) => a.variables))].join(', ') || 'a template'} breaks the manifest's YAML (${err.message}); a template value may only fill in the value it stands for`,
      ]);
    }
    throw new ManifestError(where, [`YAML: ${err.message}`]);
  }
  if (asWritten) {
    const change = structureChange(asWritten.raw, parsed.raw);
    if (change) {
      // The line of the action that did it, where known; else of the place that changed.
      const first = change.actions[0];
      const line = first !== undefined ? expansion.actions[first]?.line : asWritten.lineOf(change.path);
      throw new ManifestError(where, [`${line ? `line ${line}: ` : ''}${culprits(change, expansion)}`]);
    }
    // Lines of problems are the manifest's own, not those of the expanded text.
    parsed = { ...parsed, lineOf: asWritten.lineOf };
  }
  const result = validateManifest(parsed, location.href, baseUrl);
  if (!result.manifest) throw new ManifestError(where, result.problems, failureCommandsOf(parsed.data), destOf(parsed.data));
  return { manifest: result.manifest, warnings: result.warnings };
}

/**
 * The actions whose value alone breaks the YAML: each is spliced in by itself, the others left as the
 * plain values they stand for. Empty when only a combination does.
 */
function yamlBreakers(expansion: Expansion): Expanded[] {
  return expansion.actions.filter((action, i) => {
    const text = expansion.marked.replace(PLACEHOLDER, (mark, n: string) => (Number(n) === i ? action.value : mark));
    try {
      parseYaml(text);
      return false;
    } catch (err) {
      return err instanceof YamlSyntaxError;
    }
  });
}

/** The manifest as its author wrote it, each template action standing for one plain value. */
function yamlOf(text: string, where: string): ParsedYaml {
  try {
    return parseYaml(text);
  } catch (err) {
    if (err instanceof YamlSyntaxError) throw new ManifestError(where, [`YAML, with each template action read as a plain value: ${err.message}; a template may fill in values, not YAML syntax`]);
    throw err;
  }
}

/**
 * Fetches and checks a manifest. A relative src resolves against where the manifest really came from, so
 * `latest.yml` redirecting to `v42/manifest.yml` finds `v42/app.tar.gz`, as a browser would.
 */
export async function loadManifest(location: Location, opts: TransferOptions, verifyKeys: readonly KeyObject[] = [], prefetched?: Fetched): Promise<LoadedManifest> {
  // watch mode has the bytes already: deploying exactly what it saw change avoids a second fetch and a race.
  const fetched = prefetched ?? (await fetchBytes(location, MAX_MANIFEST_BYTES, 'manifest', opts));
  // Before anything in it is believed: a manifest that fails here names no failure commands to run.
  if (verifyKeys.length) await verifySignature(location, fetched.bytes, verifyKeys, opts);
  const text = fetched.bytes.toString('utf8');
  if (text.includes('\0')) throw new StretcherError('MANIFEST_INVALID', `manifest ${location} is binary, not YAML`);
  return manifestFromText(text, location, opts.env, fetched.url);
}

/** Signatures are tiny; anything larger than this is not one. */
const MAX_SIGNATURE_BYTES = 4096;

async function verifySignature(location: Location, manifest: Buffer, keys: readonly KeyObject[], opts: TransferOptions): Promise<void> {
  let sig: Buffer;
  try {
    sig = (await fetchBytes(signatureUrl(location), MAX_SIGNATURE_BYTES, 'signature', opts)).bytes;
  } catch (err) {
    if (opts.signal.aborted) throw err;
    throw new SignatureError(`manifest ${location} is unsigned or its signature cannot be fetched (${(err as Error).message}); refusing to deploy it`);
  }
  checkSignature(manifest, sig, keys, location.shown);
  opts.log.info(`manifest signature verified (${location}.sig)`);
}

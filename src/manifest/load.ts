import type { KeyObject } from 'node:crypto';
import { fetchBytes, type Fetched, type TransferOptions } from '../transfer/download.js';
import { StretcherError } from '../shared/errors.js';
import { redactUrl } from '../shared/redact.js';
import { parseSourceUrl } from '../transfer/sources/index.js';
import { ManifestError } from './errors.js';
import { parseYaml, YamlSyntaxError } from './parse.js';
import { checkSignature, signatureUrl, SignatureError } from './signature.js';
import { expandTemplate } from './template.js';
import type { Manifest } from './types.js';
import { failureCommandsOf, validateManifest } from './validate.js';

/** Manifests are a page of YAML; anything far larger is a mistake or an attack, not a manifest. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;

export interface LoadedManifest {
  manifest: Manifest;
  warnings: string[];
}

/** Template, YAML, schema and rules over a manifest's bytes. Throws ManifestError listing every problem. */
export function manifestFromText(text: string, url: string, env: NodeJS.ProcessEnv, baseUrl = url): LoadedManifest {
  const where = redactUrl(url);
  let expanded: string;
  try {
    expanded = expandTemplate(text, env, where);
  } catch (err) {
    throw new ManifestError(where, [(err as Error).message.replace(`${where}:`, 'line ')]);
  }
  let parsed;
  try {
    parsed = parseYaml(expanded);
  } catch (err) {
    if (err instanceof YamlSyntaxError) throw new ManifestError(where, [`YAML: ${err.message}`]);
    throw err;
  }
  const result = validateManifest(parsed, url, baseUrl);
  if (!result.manifest) throw new ManifestError(where, result.problems, failureCommandsOf(parsed.data));
  return { manifest: result.manifest, warnings: result.warnings };
}

/**
 * Fetches and checks a manifest. A relative src resolves against where the manifest really came from, so
 * `latest.yml` redirecting to `v42/manifest.yml` finds `v42/app.tar.gz`, as a browser would.
 */
export async function loadManifest(urlText: string, opts: TransferOptions, verifyKeys: readonly KeyObject[] = [], prefetched?: Fetched): Promise<LoadedManifest> {
  const url = parseSourceUrl(urlText);
  // watch mode has the bytes already: deploying exactly what it saw change avoids a second fetch and a race.
  const fetched = prefetched ?? (await fetchBytes(url, MAX_MANIFEST_BYTES, 'manifest', opts));
  // Before anything in it is believed: a manifest that fails here names no failure commands to run.
  if (verifyKeys.length) await verifySignature(url, fetched.bytes, verifyKeys, opts);
  const text = fetched.bytes.toString('utf8');
  if (text.includes('\0')) throw new StretcherError(`manifest ${redactUrl(url.toString())} is binary, not YAML`);
  return manifestFromText(text, url.toString(), opts.env, fetched.url);
}

/** Signatures are tiny; anything larger than this is not one. */
const MAX_SIGNATURE_BYTES = 4096;

async function verifySignature(url: URL, manifest: Buffer, keys: readonly KeyObject[], opts: TransferOptions): Promise<void> {
  const where = redactUrl(url.toString());
  let sig: Buffer;
  try {
    sig = (await fetchBytes(signatureUrl(url), MAX_SIGNATURE_BYTES, 'signature', opts)).bytes;
  } catch (err) {
    if (opts.signal.aborted) throw err;
    throw new SignatureError(`manifest ${where} is unsigned or its signature cannot be fetched (${(err as Error).message}); refusing to deploy it`);
  }
  checkSignature(manifest, sig, keys, where);
  opts.log.info(`manifest signature verified (${where}.sig)`);
}

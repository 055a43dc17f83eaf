import { createHash } from 'node:crypto';
import path from 'node:path';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import { normalDest } from '../shared/dest.js';
import { parseDuration } from '../shared/duration.js';
import { StretcherError } from '../shared/errors.js';
import { closest } from '../shared/suggest.js';
import { Location } from '../shared/location.js';
import { redactUrl } from '../shared/redact.js';
import { CHECKSUM_HELP, type Checksum, parseChecksum } from '../transfer/checksum.js';
import { GitSource, isGitSource, parseGitSource } from '../transfer/git/source.js';
import { unsupportedScheme } from '../transfer/sources/index.js';
import { checkDest } from './dest-policy.js';
import { judgeDestMode } from './dest-mode.js';
import type { ParsedYaml } from './parse.js';
import type { Archive, HealthCheck, Manifest, RawManifest } from './types.js';

import { validate as compiledValidate } from './compiled-schema.js';

// schemas/manifest.schema.json, compiled by ajv at build time (scripts/compile-schema.mjs): loading ajv and
// compiling the schema would cost every deploy about 60 ms of start-up.
const validateSchema = compiledValidate as unknown as ValidateFunction;

const TOP_KEYS = [
  'src',
  'checksum',
  'layers',
  'dest',
  'dest_mode',
  'sync_strategy',
  'excludes',
  'exclude_from',
  'releases_dir',
  'keep_releases',
  'rollback_on_failure',
  'command_timeout',
  'health',
  'manifest_url',
  'serial',
  'expires',
  'commands',
];
const COMMAND_KEYS = ['pre', 'post', 'success', 'failure'];
const HEALTH_KEYS = ['command', 'url', 'timeout', 'interval'];
/** health's defaults: keep trying for a minute, every two seconds. */
const HEALTH_TIMEOUT_MS = 60_000;
const HEALTH_INTERVAL_MS = 2000;

export interface Validated {
  manifest?: Manifest;
  problems: string[];
  warnings: string[];
}

/** Schema first (shape, unknown keys), then what a schema cannot say: digests, dangerous dests, URLs. */
export function validateManifest(parsed: ParsedYaml, manifestUrl: string, baseUrl = manifestUrl): Validated {
  const { data } = parsed;
  const validate = validateSchema;
  const problems: string[] = [];
  const warnings: string[] = [];
  const at = (path: (string | number)[]): string => {
    const line = parsed.lineOf(path);
    return line ? `line ${line}: ` : '';
  };
  if (!validate(data)) {
    const seen = new Set<string>();
    for (const e of validate.errors ?? []) {
      const text = describe(e, data);
      if (text === undefined) continue;
      const path = pointerToPath(e.instancePath);
      // An unknown key is reported at the key itself, not at the mapping that holds it.
      const extra = e.keyword === 'additionalProperties' ? [String((e.params as { additionalProperty: string }).additionalProperty)] : [];
      const line = `${at([...path, ...extra])}${text}`;
      if (!seen.has(line)) problems.push(line);
      seen.add(line);
    }
    return { problems, warnings };
  }
  const raw = data as RawManifest;
  if (raw.dest !== undefined) check(problems, at(['dest']), () => checkDest(raw.dest as string));
  const base = Location.parse(baseUrl);
  const src = raw.src === undefined ? undefined : check(problems, at(['src']), () => resolveSrc(raw.src as string, base));
  const checksum = src === undefined && raw.src !== undefined ? undefined : checksumFor(problems, at([raw.checksum === undefined ? 'src' : 'checksum']), src, raw.checksum, '');
  const layers: Archive[] = [];
  for (const [i, layer] of (raw.layers ?? []).entries()) {
    const resolved = check(problems, at(['layers', i, 'src']), () => resolveSrc(layer.src, base), `layers[${i}].`);
    const sum = resolved === undefined ? undefined : checksumFor(problems, at(['layers', i, layer.checksum === undefined ? 'src' : 'checksum']), resolved, layer.checksum, `layers[${i}]: `);
    const archive = resolved === undefined ? undefined : archiveOf(resolved, sum);
    if (archive) layers.push(archive);
  }
  for (const a of [...(src ? [archiveOf(src, checksum)] : []), ...layers]) {
    if (a?.kind === 'git' && !a.checksum) warnings.push(`git source ${a.src} has no checksum: deploying whatever ${a.src.refShown} points at (pin a commit id as its checksum to deploy exactly one)`);
  }
  if (raw.releases_dir !== undefined) check(problems, at(['releases_dir']), () => checkDest(raw.releases_dir as string, 'releases_dir'));
  const releaseKeys = (['releases_dir', 'keep_releases', 'rollback_on_failure'] as const).filter((k) => raw[k] !== undefined);
  if (releaseKeys.length && raw.sync_strategy !== 'release') warnings.push(`${releaseKeys.join(', ')} only apply to sync_strategy: release`);
  if (raw.exclude_from !== undefined && (raw.exclude_from.startsWith('/') || raw.exclude_from.split('/').includes('..'))) {
    problems.push(`${at(['exclude_from'])}exclude_from must be a path inside the archive, without "..": ${JSON.stringify(raw.exclude_from)}`);
  }
  if (raw.manifest_url !== undefined) check(problems, at(['manifest_url']), () => Location.parse(raw.manifest_url as string), 'manifest_url: ');
  if (raw.expires !== undefined && Number.isNaN(Date.parse(raw.expires))) problems.push(`${at(['expires'])}expires ${JSON.stringify(raw.expires)} is not a time`);
  const destMode = judgeDestMode(parsed.destModeSource, raw.dest_mode);
  if (destMode.problem) problems.push(`${at(['dest_mode'])}${destMode.problem}`);
  if (destMode.warning) warnings.push(destMode.warning);
  const commandTimeoutMs = raw.command_timeout === undefined ? undefined : check(problems, at(['command_timeout']), () => parseDuration(raw.command_timeout as string, 'command-timeout'));
  const health = raw.health === undefined ? undefined : healthCheck(raw.health, problems, (key) => at(['health', key]));
  if (problems.length) return { problems, warnings };
  const commands = raw.commands ?? {};
  const single = src !== undefined ? archiveOf(src, checksum) : undefined;
  const archives = single ? [single] : layers;
  const identity = identityOf(archives);
  return {
    problems,
    warnings,
    manifest: {
      url: Location.parse(manifestUrl),
      ...(src !== undefined ? { src } : {}),
      ...(checksum !== undefined ? { checksum } : {}),
      archives,
      ...(identity ? { identity } : {}),
      ...(raw.dest !== undefined ? { dest: normalDest(raw.dest) } : {}),
      destMode: raw.dest_mode ?? 0o755,
      syncStrategy: raw.sync_strategy ?? 'rsync',
      excludes: raw.excludes ?? [],
      ...(raw.exclude_from !== undefined ? { excludeFrom: raw.exclude_from } : {}),
      ...(raw.releases_dir !== undefined ? { releasesDir: path.resolve(raw.releases_dir) } : {}),
      keepReleases: raw.keep_releases ?? 5,
      rollbackOnFailure: raw.rollback_on_failure ?? true,
      ...(commandTimeoutMs !== undefined ? { commandTimeoutMs } : {}),
      ...(health ? { health } : {}),
      binding: {
        ...(raw.manifest_url !== undefined ? { manifestUrl: raw.manifest_url } : {}),
        ...(raw.serial !== undefined ? { serial: raw.serial } : {}),
        ...(raw.expires !== undefined ? { expires: new Date(raw.expires) } : {}),
      },
      commands: {
        pre: commands.pre ?? [],
        post: commands.post ?? [],
        success: commands.success ?? [],
        failure: commands.failure ?? [],
      },
    },
  };
}

/** `health`, defaults applied; its URL must parse (the schema checked the scheme). */
function healthCheck(raw: NonNullable<RawManifest['health']>, problems: string[], at: (key: string) => string): HealthCheck | undefined {
  if (raw.command === undefined && raw.url === undefined) {
    problems.push(`${at('command')}health needs a command, a url, or both`);
    return undefined;
  }
  if (raw.url !== undefined && !URL.canParse(raw.url)) problems.push(`${at('url')}health.url ${JSON.stringify(redactUrl(raw.url))} is not a URL`);
  const ms = (value: string | number | undefined, key: string, fallback: number): number | undefined =>
    value === undefined ? fallback : typeof value === 'number' ? value * 1000 : check(problems, at(key), () => parseDuration(value, `health.${key}`));
  const timeoutMs = ms(raw.timeout, 'timeout', HEALTH_TIMEOUT_MS);
  const intervalMs = ms(raw.interval, 'interval', HEALTH_INTERVAL_MS);
  if (timeoutMs === undefined || intervalMs === undefined) return undefined;
  return { ...(raw.command !== undefined ? { command: raw.command } : {}), ...(raw.url !== undefined ? { url: raw.url } : {}), timeoutMs, intervalMs };
}

/**
 * Hex digits naming a version: the checksum for a single src; for layers, a sha256 over their checksums.
 * Undefined while a git source is unpinned: the deploy names it once the ref is resolved.
 */
export function identityOf(archives: readonly Archive[]): string | undefined {
  if (archives.length === 0 || archives.some((a) => !a.checksum)) return undefined;
  const sums = archives.map((a) => a.checksum as Checksum);
  if (sums.length === 1) return sums[0]?.hex;
  return createHash('sha256')
    .update(sums.map((c) => `${c.algorithm}:${c.hex}\n`).join(''))
    .digest('hex');
}

function archiveOf(src: Location | GitSource, checksum: Checksum | undefined): Archive | undefined {
  if (src instanceof GitSource) return { kind: 'git', src, ...(checksum ? { checksum } : {}) };
  return checksum ? { kind: 'file', src, checksum } : undefined;
}

const COMMIT_HELP = 'the commit id the ref must resolve to: 40 hex digits (SHA-1), or 64 for a SHA-256 repository';

/**
 * The checksum of one src: required for an archive; for a git source optional, and a commit id. A problem
 * is listed; undefined then (and for an unpinned git source).
 */
function checksumFor(problems: string[], line: string, src: Location | GitSource | undefined, text: string | undefined, prefix: string): Checksum | undefined {
  if (src === undefined) return text === undefined ? undefined : check(problems, line, () => parseChecksum(text), prefix);
  if (!(src instanceof GitSource)) {
    if (text === undefined) {
      problems.push(`${line}${prefix}src is set, so checksum is required: ${CHECKSUM_HELP}`);
      return undefined;
    }
    return check(problems, line, () => parseChecksum(text), prefix);
  }
  if (text === undefined) return undefined;
  const hex = /^(?:sha1[:=]|sha256[:=])?([0-9a-fA-F]+)$/i.exec(text.trim())?.[1]?.toLowerCase();
  if (hex === undefined || (hex.length !== 40 && hex.length !== 64)) {
    problems.push(`${line}${prefix}checksum ${JSON.stringify(text)} of git source ${src} is not a commit id: a git source's checksum is ${COMMIT_HELP}`);
    return undefined;
  }
  return { algorithm: hex.length === 40 ? 'sha1' : 'sha256', hex };
}

/** An absolute URL for src (a relative one resolves against the manifest's URL), or a git source. */
function resolveSrc(src: string, manifestUrl: Location): Location | GitSource {
  if (isGitSource(src)) return parseGitSource(src);
  let location: Location;
  try {
    location = manifestUrl.resolve(src);
  } catch {
    throw new StretcherError('MANIFEST_INVALID', `src ${JSON.stringify(redactUrl(src))} is not a URL`);
  }
  const why = unsupportedScheme(location);
  if (why) throw new StretcherError('MANIFEST_INVALID', `src ${why.replace(/^URL /, '')}`);
  return location;
}

/** Runs one rule; a problem it throws is listed (with its line, and `prefix`) instead of stopping the rest. */
function check<T>(problems: string[], line: string, rule: () => T, prefix = ''): T | undefined {
  try {
    return rule();
  } catch (err) {
    if (!(err instanceof StretcherError)) throw err;
    problems.push(`${line}${prefix}${err.message}`);
    return undefined;
  }
}

/** Failure commands from a manifest that failed validation, when they themselves are valid. */
/** An invalid manifest's dest, when it is one stretcher would deploy to (and normalized, as a valid one is). */
export function destOf(data: unknown): string | undefined {
  const dest = (data as { dest?: unknown } | null)?.dest;
  if (typeof dest !== 'string') return undefined;
  try {
    checkDest(dest);
    return normalDest(dest);
  } catch {
    return undefined;
  }
}

export function failureCommandsOf(data: unknown): string[] | undefined {
  const commands = (data as { commands?: unknown } | null)?.commands;
  const failure = (commands as { failure?: unknown } | null | undefined)?.failure;
  return Array.isArray(failure) && failure.every((c) => typeof c === 'string') ? (failure as string[]) : undefined;
}

function pointerToPath(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

export function keyPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function describe(e: ErrorObject, data: unknown): string | undefined {
  const path = pointerToPath(e.instancePath);
  const name = keyPath(path) || 'the manifest';
  // A duration is a string or a number (anyOf): one message for the value, not one per branch.
  const isDuration = path[0] === 'health' && (path[1] === 'timeout' || path[1] === 'interval');
  if (isDuration) return e.keyword === 'anyOf' ? `${name} ${JSON.stringify(valueAt(data, path))} must be seconds (60) or a Go duration (30s, 2m)` : undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = path.length === 0 ? TOP_KEYS : path[0] === 'health' ? HEALTH_KEYS : COMMAND_KEYS;
      const hint = closest(key, known);
      const where = path.length ? ` in ${name}` : '';
      return `unknown key ${JSON.stringify(key)}${where}${hint ? ` (did you mean ${JSON.stringify(hint)}?)` : ` (known keys: ${known.join(', ')})`}`;
    }
    case 'type': {
      if (path.length === 0) return 'the manifest must be a YAML mapping of keys (src, dest, commands, ...)';
      const isCommandList = path[0] === 'commands' && path.length === 2;
      if (isCommandList || (path[0] === 'excludes' && path.length === 1)) return `${name} must be a list of strings (one "- item" per line)`;
      const value = valueAt(data, path);
      const asMapping = typeof value === 'object' && value !== null && !Array.isArray(value);
      const hint = asMapping ? ' (YAML read it as a mapping: quote the whole item, e.g. - "cmd :a: b")' : '';
      const article = e.params.type === 'integer' ? 'an' : 'a';
      return `${name} must be ${article} ${typeName(String(e.params.type))}${hint}`;
    }
    case 'enum':
      return `${name} must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')} (got ${JSON.stringify(valueAt(data, path))})`;
    case 'not':
      return 'src and layers cannot both be given: use src for one archive, or layers for several';
    case 'dependentRequired': {
      const missing = String((e.params as { missingProperty: string }).missingProperty);
      const help = missing === 'checksum' ? `: ${CHECKSUM_HELP}` : ' (an absolute path)';
      const by = String((e.params as { property?: string }).property ?? 'src');
      return `${by} is set, so ${missing} is required${help}`;
    }
    case 'required':
      return `${name} needs ${String((e.params as { missingProperty: string }).missingProperty)}`;
    case 'minItems':
      return `${name} must not be empty`;
    case 'pattern': {
      const value = String(valueAt(data, path));
      if (path[0] === 'checksum' || path[path.length - 1] === 'checksum') return problemOf(() => parseChecksum(value));
      if (path[0] === 'dest') return problemOf(() => checkDest(value));
      if (path[0] === 'releases_dir') return `releases_dir ${JSON.stringify(value)} must be an absolute path`;
      if (path[0] === 'command_timeout') return `command_timeout ${JSON.stringify(value)} must be seconds (90) or a Go duration (30s, 5m, 1m30s); 0 for no limit`;
      if (path[0] === 'health') return `health.url ${JSON.stringify(redactUrl(value))} must be an http:// or https:// URL`;
      if (path[0] === 'expires') return `expires ${JSON.stringify(value)} must be an RFC 3339 time, such as 2026-12-31T23:59:59Z`;
      return `${name} does not match ${String(e.params.pattern)}`;
    }
    case 'minimum':
    case 'maximum':
      return path[0] === 'dest_mode' ? `${name} must be a mode between 0 and 07777` : `${name} must be at least ${String(e.params.limit)}`;
    case 'minLength':
      return `${name} must not be empty`;
    default:
      return `${name} ${e.message ?? 'is invalid'}`;
  }
}

/** The message of what `rule` throws, or undefined when it passes. */
function problemOf(rule: () => unknown): string | undefined {
  try {
    rule();
    return undefined;
  } catch (err) {
    if (err instanceof StretcherError) return err.message;
    throw err;
  }
}

function typeName(t: string): string {
  return t === 'array' ? 'list' : t === 'object' ? 'mapping' : t;
}

function valueAt(data: unknown, path: readonly (string | number)[]): unknown {
  let v = data;
  for (const p of path) v = (v as Record<string | number, unknown> | undefined)?.[p];
  return v;
}

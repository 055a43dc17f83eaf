import { StretcherError } from '../shared/errors.js';
import { Location } from '../shared/location.js';
import type { Manifest } from './types.js';

/**
 * A signature over a manifest's bytes alone can be replayed: last month's signed manifest (a downgrade to
 * a vulnerable build) or another team's, served at this app's URL. A signed manifest is therefore bound
 * to its place (manifest_url), its order (serial) and optionally its lifetime (expires), and refused,
 * before anything in it runs, when any of them does not hold.
 */
export class ReplayError extends StretcherError {
  override name = 'ReplayError';
  constructor(message: string) {
    super('REPLAYED_MANIFEST', message);
  }
}

/** Query parameters that carry a request's credentials, not what is asked for (a pre-signed URL's). */
const CREDENTIAL_PARAMS = /^(x-amz-|x-goog-)|^(signature|sig|token|access_token|awsaccesskeyid|expires|password|secret)$/i;

/**
 * The URL a manifest speaks of, for comparing: without user:password@ and pre-signed query parameters,
 * which change from one request to the next while the object stays the same.
 */
export function boundForm(url: Location): string {
  const u = new URL(url.href);
  u.username = '';
  u.password = '';
  for (const key of [...u.searchParams.keys()]) if (CREDENTIAL_PARAMS.test(key)) u.searchParams.delete(key);
  return u.href;
}

/**
 * Checks a verified manifest's binding: it names the URL it was asked for, its serial is not lower than
 * the highest already deployed to its dest (equal is a redeploy), and it has not expired.
 */
export function checkBinding(manifest: Manifest, asked: Location, highestSerial: number | undefined, now = new Date()): void {
  const { manifestUrl, serial, expires } = manifest.binding;
  const where = `signed manifest ${asked}`;
  if (manifestUrl === undefined || serial === undefined) {
    const missing = [manifestUrl === undefined ? 'manifest_url' : '', serial === undefined ? 'serial' : ''].filter(Boolean).join(' and ');
    throw new ReplayError(
      `${where} has no ${missing}: with --verify-key a manifest must name the URL it is deployed from (manifest_url) and its serial, so that it cannot be replayed elsewhere or later`,
    );
  }
  const named = boundForm(Location.parse(manifestUrl));
  if (named !== boundForm(asked)) throw new ReplayError(`${where} is bound to another URL (manifest_url ${Location.parse(manifestUrl)}): refusing it, as a manifest copied from elsewhere`);
  if (highestSerial !== undefined && serial < highestSerial) {
    throw new ReplayError(`${where} has serial ${serial}, lower than serial ${highestSerial} already deployed to ${manifest.dest ?? 'this dest'}: refusing it, as an older manifest replayed`);
  }
  if (expires !== undefined && expires.getTime() <= now.getTime()) throw new ReplayError(`${where} expired at ${expires.toISOString()}: refusing it`);
}

/** For `validate --verify-key`: what a deploy will require of a signed manifest, without a URL to compare. */
export function checkBindingShape(manifest: Manifest, now = new Date()): void {
  const { manifestUrl, serial, expires } = manifest.binding;
  if (manifestUrl === undefined || serial === undefined) {
    const missing = [manifestUrl === undefined ? 'manifest_url' : '', serial === undefined ? 'serial' : ''].filter(Boolean).join(' and ');
    throw new ReplayError(`no ${missing}: a signed manifest must name the URL it is deployed from (manifest_url) and its serial`);
  }
  if (expires !== undefined && expires.getTime() <= now.getTime()) throw new ReplayError(`expired at ${expires.toISOString()}`);
}

/**
 * With --verify-key every git source must be pinned to a commit (its checksum): a signature over a
 * manifest that names only a branch cannot vouch for whatever the branch points at later.
 */
export function checkGitPinned(manifest: Manifest): void {
  const moving = manifest.archives.find((a) => a.kind === 'git' && !a.checksum);
  if (moving) {
    throw new StretcherError(
      'MANIFEST_INVALID',
      `refusing git source ${moving.src} without a checksum: with --verify-key a git source must be pinned to a commit id (its checksum), since a signature cannot vouch for whatever a branch points at later`,
    );
  }
}

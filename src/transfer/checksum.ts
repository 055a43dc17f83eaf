import { StretcherError } from '../shared/errors.js';

export type HashAlgorithm = 'md5' | 'sha1' | 'sha256' | 'sha512';

export interface Checksum {
  algorithm: HashAlgorithm;
  /** Lower-case hex. */
  hex: string;
}

const BY_LENGTH: Record<number, HashAlgorithm> = { 32: 'md5', 40: 'sha1', 64: 'sha256', 128: 'sha512' };

export const CHECKSUM_HELP = 'a hex digest of 32 (md5), 40 (sha1), 64 (sha256) or 128 (sha512) characters, optionally prefixed as sha256:<hex>';

/** A checksum that is not one: the message says what is wrong with it. */
export class ChecksumFormatError extends StretcherError {
  override name = 'ChecksumFormatError';
  constructor(message: string) {
    super('MANIFEST_INVALID', message);
  }
}

/** Go stretcher picks the algorithm from the digest's length; a `sha256:`-style prefix must agree with it. */
export function parseChecksum(text: string): Checksum {
  const m = /^(?:(md5|sha1|sha256|sha512)[:=])?([0-9a-f]+)$/i.exec(text.trim());
  if (!m) throw new ChecksumFormatError(`checksum ${JSON.stringify(text)} is not ${CHECKSUM_HELP}`);
  const hex = (m[2] as string).toLowerCase();
  const algorithm = BY_LENGTH[hex.length];
  if (!algorithm) throw new ChecksumFormatError(`checksum has ${hex.length} hex digits; expected ${CHECKSUM_HELP}`);
  const prefix = m[1]?.toLowerCase();
  if (prefix && prefix !== algorithm) throw new ChecksumFormatError(`checksum is prefixed ${prefix} but has the length of a ${algorithm} digest`);
  return { algorithm, hex };
}

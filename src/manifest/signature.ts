import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { StretcherError } from '../shared/errors.js';
import { Location } from '../shared/location.js';

/**
 * Signed manifests: an Ed25519 signature over the exact bytes fetched, kept beside the manifest as
 * `<manifest>.sig`. The manifest pins the archive's checksum, so a verified manifest authenticates the whole
 * deploy. Made with:
 *   openssl genpkey -algorithm ed25519 -out key.pem && openssl pkey -in key.pem -pubout -out key.pub
 *   openssl pkeyutl -sign -rawin -inkey key.pem -in manifest.yml -out manifest.yml.sig
 */
export class SignatureError extends StretcherError {
  override name = 'SignatureError';
  constructor(message: string, code: 'SIGNATURE_INVALID' | 'VERIFY_KEY_INVALID' = 'SIGNATURE_INVALID') {
    super(code, message);
  }
}

/** Public keys from PEM files (or PEM text, as STRETCHER_VERIFY_KEY may hold); all must be Ed25519. */
export async function loadVerifyKeys(sources: readonly string[]): Promise<KeyObject[]> {
  const keys: KeyObject[] = [];
  for (const source of sources) {
    const pem = source.includes('-----BEGIN') ? source : await readKeyFile(source);
    const blocks = pem.match(/-----BEGIN PUBLIC KEY-----[\s\S]*?-----END PUBLIC KEY-----/g) ?? [];
    if (blocks.length === 0) throw new SignatureError(`verify key ${label(source)} holds no PEM public key (make one with: openssl pkey -in key.pem -pubout)`, 'VERIFY_KEY_INVALID');
    for (const block of blocks) {
      let key: KeyObject;
      try {
        key = createPublicKey(block);
      } catch (err) {
        throw new SignatureError(`verify key ${label(source)} is not a valid public key: ${(err as Error).message}`, 'VERIFY_KEY_INVALID');
      }
      if (key.asymmetricKeyType !== 'ed25519') throw new SignatureError(`verify key ${label(source)} is ${key.asymmetricKeyType}, not ed25519`, 'VERIFY_KEY_INVALID');
      keys.push(key);
    }
  }
  return keys;
}

/** A public key file is a few hundred bytes; a device or a FIFO named by mistake is never read. */
const MAX_KEY_FILE_BYTES = 64 * 1024;

async function readKeyFile(file: string): Promise<string> {
  const st = await stat(file).catch((err: NodeJS.ErrnoException) => {
    throw new SignatureError(`cannot read verify key ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, 'VERIFY_KEY_INVALID');
  });
  if (!st.isFile()) throw new SignatureError(`verify key ${file} is not a regular file`, 'VERIFY_KEY_INVALID');
  if (st.size > MAX_KEY_FILE_BYTES) throw new SignatureError(`verify key ${file} is ${st.size} bytes; a public key is a few hundred`, 'VERIFY_KEY_INVALID');
  return readFile(file, 'utf8');
}

function label(source: string): string {
  return source.includes('-----BEGIN') ? '(from STRETCHER_VERIFY_KEY)' : source;
}

/** The 64 signature bytes from a `.sig` file: raw, or base64 text. */
export function decodeSignature(sig: Buffer): Buffer | undefined {
  if (sig.length === 64) return sig;
  const text = sig.toString('latin1').trim();
  if (!/^[A-Za-z0-9+/=\s]+$/.test(text)) return undefined;
  const decoded = Buffer.from(text.replace(/\s+/g, ''), 'base64');
  return decoded.length === 64 ? decoded : undefined;
}

export function checkSignature(manifest: Buffer, sig: Buffer, keys: readonly KeyObject[], where: string): void {
  const raw = decodeSignature(sig);
  if (!raw) throw new SignatureError(`signature ${where}.sig is not an Ed25519 signature (64 bytes, raw or base64)`);
  if (!keys.some((key) => verify(null, manifest, key, raw))) {
    throw new SignatureError(`manifest ${where} does not match its signature under ${keys.length === 1 ? 'the verify key' : `any of the ${keys.length} verify keys`}; refusing to deploy it`);
  }
}

/** Where the signature of a manifest lives: the same URL with `.sig` added to its path. */
export function signatureUrl(manifest: Location): Location {
  const url = new URL(manifest.href);
  url.pathname += '.sig';
  return Location.of(url);
}

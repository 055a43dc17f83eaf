import type { Readable } from 'node:stream';
import type { Location } from '../../shared/location.js';

export interface OpenOptions {
  signal: AbortSignal;
  userAgent: string;
  env: NodeJS.ProcessEnv;
  /** Validators from an earlier fetch: a source answers notModified instead of sending the body again. */
  conditional?: Validators;
  /** Extra request headers, for a source built on HTTP (gs:// sends its bearer token this way). */
  headers?: Record<string, string>;
}

/** What identifies a version of a document without reading it: HTTP/S3 ETag, Last-Modified, file mtime. */
export interface Validators {
  etag?: string;
  lastModified?: string;
  mtimeMs?: number;
  size?: number;
}

/** An opened URL: the body as a byte stream and, when the server said, its length. */
export interface OpenedSource {
  body: Readable;
  size?: number;
  /** Where the body really came from, after redirects: relative URLs inside it resolve against this. */
  finalUrl?: string;
  /** The conditional request matched: `body` is empty and the document is unchanged. */
  notModified?: boolean;
  validators?: Validators;
  /** HTTP sources: the response's headers, for sources built on HTTP that read their own (gs://). */
  headers?: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * One per URL scheme: opens the location for reading. Failures are TransferErrors carrying what is known
 * (stage, status, errno), so that one rule (failure.ts) decides whether to try again.
 */
export type Opener = (location: Location, opts: OpenOptions) => Promise<OpenedSource>;

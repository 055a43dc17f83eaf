import type { Readable } from 'node:stream';

export interface OpenOptions {
  signal: AbortSignal;
  userAgent: string;
  env: NodeJS.ProcessEnv;
}

/** An opened URL: the body as a byte stream and, when the server said, its length. */
export interface OpenedSource {
  body: Readable;
  size?: number;
  /** Where the body really came from, after redirects: relative URLs inside it resolve against this. */
  finalUrl?: string;
}

/** One per URL scheme. Throws RetryableError for failures worth retrying, StretcherError otherwise. */
export type Opener = (url: URL, opts: OpenOptions) => Promise<OpenedSource>;

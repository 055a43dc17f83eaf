import { pathToFileURL } from 'node:url';
import { StretcherError } from './errors.js';
import { redactUrl } from './redact.js';

/**
 * A URL as stretcher carries it: the full text, credentials included, for opening it; and a display form
 * with them redacted. Interpolating a Location into a message, a log line or JSON gives the display
 * form, so a credential leaves the process only when the code asks for `href` by name.
 */
export class Location {
  readonly shown: string;

  private constructor(readonly url: URL) {
    this.shown = redactUrl(url.href);
  }

  /**
   * A URL as the user wrote it. Absolute paths are accepted as file URLs (Go stretcher rejected them),
   * which keeps `echo /srv/manifests/app.yml | stretcher` working.
   */
  static parse(text: string): Location {
    if (text.startsWith('/')) return new Location(pathToFileURL(text));
    try {
      return new Location(new URL(text));
    } catch {
      throw new StretcherError('URL_INVALID', `${JSON.stringify(redactUrl(text))} is not a URL`);
    }
  }

  static of(url: URL): Location {
    return new Location(new URL(url.href));
  }

  /** The full URL, credentials included: for opening it, never for printing. */
  get href(): string {
    return this.url.href;
  }

  /** `http:`, `s3:`, ...: the scheme, as URL.protocol spells it. */
  get protocol(): string {
    return this.url.protocol;
  }

  /** A relative reference resolved against this one (a manifest's `src: app.tar.gz`). */
  resolve(reference: string): Location {
    return new Location(new URL(reference, this.url));
  }

  toString(): string {
    return this.shown;
  }

  toJSON(): string {
    return this.shown;
  }
}

import type { Manifest } from '../manifest/types.js';

/** The last successful deploy to a dest, as hooks see it ("previous"). */
export interface PreviousDeploy {
  checksum?: string;
  manifestUrl?: string;
  /** The highest serial of a signed manifest deployed to this dest. */
  highestSerial?: number;
}

/**
 * What hook commands learn about the deploy, on top of stretcher's own environment (SERF_* included).
 * URLs are in their display form: a credential in a manifest URL never reaches a command's environment.
 */
export function hookEnv(base: NodeJS.ProcessEnv, manifest: Manifest, previous: PreviousDeploy | undefined): NodeJS.ProcessEnv {
  return {
    ...base,
    STRETCHER_MANIFEST_URL: manifest.url.shown,
    // Layers: space-separated, in order.
    STRETCHER_SRC: manifest.archives.map((a) => a.src.shown).join(' '),
    STRETCHER_DEST: manifest.dest ?? '',
    STRETCHER_CHECKSUM: manifest.archives.map((a) => a.checksum?.hex ?? '').join(' '),
    STRETCHER_PREVIOUS_CHECKSUM: previous?.checksum ?? '',
    STRETCHER_PREVIOUS_MANIFEST_URL: previous?.manifestUrl ?? '',
  };
}

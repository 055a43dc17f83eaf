import { writeFileSync } from 'node:fs';
import path from 'node:path';

/** Writes a manifest file and returns its path. */
export function writeManifest(dir: string, yaml: string, name = 'manifest.yml'): string {
  const file = path.join(dir, name);
  writeFileSync(file, yaml);
  return file;
}

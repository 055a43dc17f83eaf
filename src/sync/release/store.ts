import { randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StretcherError } from '../../shared/errors.js';
import { siblingPrefix } from '../../host/paths.js';
import { normalDest } from '../../shared/dest.js';
import { removeTree } from '../../host/remove-tree.js';
import { checkRealFilesystem, makeDirs } from '../../host/dirs.js';
import { checkTrustedDir, nearestExisting } from '../../host/trust.js';

export interface ReleaseInfo {
  id: string;
  dir: string;
  /** Full hex checksum when the sidecar has it, else the 12 digits in the id. */
  checksum: string;
  time: string;
  manifestUrl?: string;
}

interface ReleaseMeta {
  id: string;
  checksum: string;
  time: string;
  manifest_url?: string;
}

/**
 * `20261123T235959.123Z-e0840daaa97c`: fixed width, so names sort chronologically (milliseconds, because
 * deploys a second apart happen), and the same build is recognisable on every host.
 */
const RELEASE_ID = /^(\d{8}T\d{6}\.\d{3}Z)-([0-9a-f]{12})(?:-(\d+))?$/;

/**
 * The releases of one dest: directories `<releases_dir>/<id>`, metadata in hidden sidecars
 * (`.<id>.json`, so nothing is added to the application's own tree), and dest a symlink to one of them.
 */
export class ReleaseStore {
  constructor(
    readonly dest: string,
    readonly dir: string,
  ) {}

  /** Default releases_dir: `releases/` beside dest (`/srv/app/current` -> `/srv/app/releases`). */
  static forDest(dest: string, releasesDir?: string): ReleaseStore {
    const clean = normalDest(dest);
    return new ReleaseStore(clean, releasesDir ?? path.join(path.dirname(clean), 'releases'));
  }

  /** dest must be a symlink or absent: a real directory is never deleted or replaced. */
  async checkDest(): Promise<void> {
    const st = await lstat(this.dest).catch(() => undefined);
    if (st?.isDirectory()) {
      throw new StretcherError(
        'DEST_INVALID',
        `dest ${this.dest} is a real directory; the release strategy needs dest to be a symlink it can switch, and never deletes a directory. To migrate: move it away (mv ${this.dest} ${this.dest}.before-releases) and deploy again, which creates the symlink; or point dest at a new path`,
      );
    }
    if (st && !st.isSymbolicLink()) throw new StretcherError('DEST_INVALID', `dest ${this.dest} is not a symlink; the release strategy needs dest to be a symlink it can switch, or absent`);
  }

  newId(checksumHex: string, now = new Date()): string {
    const stamp = now.toISOString().replace(/[-:]/g, '');
    return `${stamp}-${checksumHex.slice(0, 12)}`;
  }

  /** A free id: the same build deployed twice in one millisecond gets a numeric suffix. */
  async freeId(checksumHex: string): Promise<string> {
    const base = this.newId(checksumHex);
    for (let n = 0; ; n++) {
      const id = n === 0 ? base : `${base}-${n}`;
      if (!(await lstat(path.join(this.dir, id)).catch(() => undefined))) return id;
    }
  }

  async list(): Promise<ReleaseInfo[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const ids = names.filter((n) => RELEASE_ID.test(n)).sort();
    return Promise.all(ids.map((id) => this.info(id)));
  }

  async info(id: string): Promise<ReleaseInfo> {
    const m = RELEASE_ID.exec(id);
    const meta = await readFile(this.metaPath(id), 'utf8')
      .then((t) => JSON.parse(t) as ReleaseMeta)
      .catch(() => undefined);
    const stamp = m?.[1] ?? '';
    const time = meta?.time ?? `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13)}`;
    return {
      id,
      dir: path.join(this.dir, id),
      checksum: meta?.checksum ?? m?.[2] ?? '',
      time,
      ...(meta?.manifest_url ? { manifestUrl: meta.manifest_url } : {}),
    };
  }

  /**
   * The sidecar, written to a new private file (O_EXCL: never through anything already there) and renamed
   * over the old one, so that a crash leaves a whole sidecar or none.
   */
  async writeMeta(id: string, checksum: string, manifestUrl: string): Promise<void> {
    const meta: ReleaseMeta = { id, checksum, time: new Date().toISOString(), manifest_url: manifestUrl };
    const tmp = `${this.metaPath(id)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, `${JSON.stringify(meta, null, 2)}\n`, { flag: 'wx', mode: 0o600 });
      await rename(tmp, this.metaPath(id));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** The release dest points at now, if it points into this store. */
  async current(): Promise<string | undefined> {
    const target = await readlink(this.dest).catch(() => undefined);
    if (target === undefined) return undefined;
    const abs = path.resolve(path.dirname(this.dest), target);
    return path.dirname(abs) === path.resolve(this.dir) && RELEASE_ID.test(path.basename(abs)) ? path.basename(abs) : undefined;
  }

  /** The newest release older than `id` (what `rollback` goes back to). */
  async previous(id: string | undefined): Promise<string | undefined> {
    if (id === undefined) return undefined;
    const older = (await this.list()).map((r) => r.id).filter((r) => r < id);
    return older[older.length - 1];
  }

  /**
   * Points dest at a release atomically: a new symlink is made beside dest and renamed over it, so a reader
   * resolving dest sees the old release or the new one, never nothing.
   */
  async switchTo(id: string): Promise<void> {
    // Only a release's own name: `--to ..` or `--to .x.json` must not point dest at whatever exists there.
    const st = RELEASE_ID.test(id) ? await lstat(path.join(this.dir, id)).catch(() => undefined) : undefined;
    if (!st?.isDirectory()) throw new StretcherError('RELEASE_INVALID', `release ${id} does not exist in ${this.dir} (stretcher releases --dest ${this.dest} lists them)`);
    const parent = path.dirname(this.dest);
    const target = path.relative(parent, path.join(this.dir, id)) || '.';
    const tmp = path.join(parent, `${siblingPrefix(this.dest, 'link')}${process.pid}-${randomBytes(4).toString('hex')}`);
    await symlink(target, tmp);
    try {
      await rename(tmp, this.dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new StretcherError('RELEASE_INVALID', `cannot switch ${this.dest} to ${id}: ${(err as Error).message}`);
    }
  }

  /** Deletes the oldest releases beyond `keep`, never one in `protect`. Returns the ids removed. */
  async prune(keep: number, protect: ReadonlySet<string>): Promise<string[]> {
    const ids = (await this.list()).map((r) => r.id);
    const excess = ids.slice(0, Math.max(0, ids.length - keep)).filter((id) => !protect.has(id));
    for (const id of excess) {
      await removeTree(path.join(this.dir, id));
      await rm(this.metaPath(id), { force: true });
    }
    return excess;
  }

  /**
   * releases_dir, made if missing. Releases, their sidecars and staging trees are made in it by path, so
   * it (or, before it exists, its nearest existing parent) must be a directory nobody else can change.
   */
  async ensureDir(): Promise<void> {
    await checkRealFilesystem(this.dir, 'releases_dir');
    await checkTrustedDir(await nearestExisting(this.dir), `releases_dir ${this.dir}`, { sticky: true });
    await makeDirs(this.dir, 0o755);
    await checkTrustedDir(this.dir, `releases_dir ${this.dir}`);
  }

  private metaPath(id: string): string {
    return path.join(this.dir, `.${id}.json`);
  }
}

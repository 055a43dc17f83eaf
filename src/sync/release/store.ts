import { randomBytes } from 'node:crypto';
import { lstat, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StretcherError } from '../../shared/errors.js';
import { siblingPrefix } from '../../host/paths.js';
import { normalDest } from '../../shared/dest.js';
import { removeTree } from '../../host/remove-tree.js';
import { checkRealFilesystem, makeDirs } from '../../host/dirs.js';
import { checkTrustedDir, nearestExisting, trustedOwner, UntrustedPathError } from '../../host/trust.js';

/** How a release's deploy went: `pending` until its post commands succeed; none for an older stretcher's. */
export type ReleaseStatus = 'pending' | 'ok' | 'failed';

/** The commands of the manifest that deployed a release, kept so that a rollback to it can run them. */
export interface ReleaseHooks {
  post: string[];
  success: string[];
  failure: string[];
  /** The manifest's command_timeout, if it had one. */
  commandTimeoutMs?: number;
}

export interface ReleaseInfo {
  id: string;
  dir: string;
  /** Full hex checksum when the sidecar has it, else the 12 digits in the id. */
  checksum: string;
  time: string;
  manifestUrl?: string;
  status?: ReleaseStatus;
  hooks?: ReleaseHooks;
}

interface ReleaseMeta {
  id: string;
  checksum: string;
  time: string;
  manifest_url?: string;
  status?: ReleaseStatus;
  hooks?: ReleaseHooks;
}

/** A switch of dest: by a deploy, or by an operator's rollback. */
export interface Switch {
  id: string;
  time: string;
  by: 'deploy' | 'rollback';
}

/** How many switches are remembered: far more than keep_releases, so "previous" is always known. */
const MAX_SWITCHES = 200;

/**
 * `20261123T235959.123Z-e0840daaa97c`: fixed width, so names sort chronologically (milliseconds, because
 * deploys a second apart happen), and the same build is recognisable on every host.
 */
const RELEASE_ID = /^(\d{8}T\d{6}\.\d{3}Z)-([0-9a-f]{12})(?:-(\d+))?$/;

/**
 * The releases of one dest: directories `<releases_dir>/<id>`, metadata in hidden sidecars
 * (`.<id>.json`, so nothing is added to the application's own tree), the history of switches
 * (`.switches.json`), and dest a symlink to one of them.
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
    const meta = await this.readJson<ReleaseMeta>(this.metaPath(id));
    const stamp = m?.[1] ?? '';
    const time = meta?.time ?? `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13)}`;
    return {
      id,
      dir: path.join(this.dir, id),
      checksum: meta?.checksum ?? m?.[2] ?? '',
      time,
      ...(meta?.manifest_url ? { manifestUrl: meta.manifest_url } : {}),
      ...(meta?.status ? { status: meta.status } : {}),
      ...(meta?.hooks ? { hooks: meta.hooks } : {}),
    };
  }

  /**
   * The sidecar: checksum, manifest URL, how the deploy went, and the commands a rollback to the release
   * runs (they may hold what a template filled in, so the file is root's alone: 0600).
   */
  async writeMeta(id: string, meta: { checksum: string; manifestUrl: string; hooks: ReleaseHooks }): Promise<void> {
    await this.writeJson(this.metaPath(id), {
      id,
      checksum: meta.checksum,
      time: new Date().toISOString(),
      manifest_url: meta.manifestUrl,
      status: 'pending',
      hooks: meta.hooks,
    } satisfies ReleaseMeta);
  }

  async setStatus(id: string, status: ReleaseStatus): Promise<void> {
    const meta = await this.readJson<ReleaseMeta>(this.metaPath(id));
    if (meta) await this.writeJson(this.metaPath(id), { ...meta, status });
  }

  /** Written to a new private file (O_EXCL: never through anything already there) and renamed over the old one. */
  private async writeJson(file: string, value: unknown): Promise<void> {
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { flag: 'wx', mode: 0o600 });
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /**
   * A sidecar or the switch history: what they say picks the release dest goes to and the commands root
   * runs on a rollback, so one that another user could have written (theirs, or writable by group or
   * others: left from a time releases_dir was not root's) is refused, not believed.
   */
  private async readJson<T>(file: string): Promise<T | undefined> {
    const st = await lstat(file).catch(() => undefined);
    if (st === undefined) return undefined;
    if (!st.isFile() || !trustedOwner(st.uid) || (st.mode & 0o022) !== 0) {
      const what = st.isFile() ? `is owned by uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}` : 'is not a regular file';
      throw new UntrustedPathError(`refusing ${file}: it ${what}, so another user could have written what it says; remove it (rm ${file}) or make it root's (chown root ${file} && chmod 600 ${file})`);
    }
    return readFile(file, 'utf8')
      .then((t) => JSON.parse(t) as T)
      .catch(() => undefined);
  }

  /**
   * Before anything is read from releases_dir or dest switched (a rollback, or a deploy deciding whether
   * the build is already current): dest's parent and releases_dir must be directories nobody else can
   * change, as a deploy requires, or the sidecars, the history and the symlink could be anybody's.
   */
  async checkTrusted(): Promise<void> {
    await checkTrustedDir(path.dirname(this.dest), `to switch ${this.dest}`);
    if (await lstat(this.dir).catch(() => undefined)) await checkTrustedDir(this.dir, `releases_dir ${this.dir}`);
  }

  /** Every switch of dest, oldest first. */
  async switches(): Promise<Switch[]> {
    const history = await this.readJson<{ switches?: Switch[] }>(this.historyPath());
    return Array.isArray(history?.switches) ? history.switches : [];
  }

  private async saveSwitches(switches: Switch[]): Promise<void> {
    await this.writeJson(this.historyPath(), { switches: switches.slice(-MAX_SWITCHES) });
  }

  /** Remembers that dest now points at `id` (what was current before is remembered first, if it was not). */
  async recordSwitch(from: string | undefined, id: string, by: Switch['by']): Promise<void> {
    const switches = await this.switches();
    if (from !== undefined && switches[switches.length - 1]?.id !== from) switches.push({ id: from, time: new Date().toISOString(), by: 'deploy' });
    switches.push({ id, time: new Date().toISOString(), by });
    await this.saveSwitches(switches);
  }

  /** Forgets the last switch when it was to `id`: a release whose post failed was never really live. */
  async forgetSwitch(id: string): Promise<void> {
    const switches = await this.switches();
    if (switches[switches.length - 1]?.id !== id) return;
    switches.pop();
    await this.saveSwitches(switches);
  }

  /** The release dest points at now, if it points into this store. */
  async current(): Promise<string | undefined> {
    const target = await readlink(this.dest).catch(() => undefined);
    if (target === undefined) return undefined;
    const abs = path.resolve(path.dirname(this.dest), target);
    return path.dirname(abs) === path.resolve(this.dir) && RELEASE_ID.test(path.basename(abs)) ? path.basename(abs) : undefined;
  }

  /**
   * The release that was live before `id` (what `rollback` goes back to): from the switch history, the
   * last one before `id`'s own switch that still exists and did not fail. Without a history (releases made
   * by an older stretcher), the newest release older than `id` by name.
   */
  async previous(id: string | undefined): Promise<string | undefined> {
    if (id === undefined) return undefined;
    const switches = await this.switches();
    const at = switches.map((s) => s.id).lastIndexOf(id);
    if (at >= 0) {
      const listed = new Map((await this.list()).map((r) => [r.id, r] as const));
      for (let i = at - 1; i >= 0; i--) {
        const candidate = listed.get((switches[i] as Switch).id);
        if (candidate && candidate.id !== id && candidate.status !== 'failed') return candidate.id;
      }
      return undefined;
    }
    const older = (await this.list()).map((r) => r.id).filter((r) => r < id);
    return older[older.length - 1];
  }

  /** The switch that made `id` current, when it was an operator's rollback (a second one must not undo it). */
  async rolledBackTo(id: string | undefined): Promise<{ from?: string } | undefined> {
    const switches = await this.switches();
    const last = switches[switches.length - 1];
    if (id === undefined || last?.id !== id || last.by !== 'rollback') return undefined;
    const from = switches[switches.length - 2]?.id;
    return from !== undefined ? { from } : {};
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

  /**
   * Retention, run once a deploy's post commands succeeded: releases whose deploy failed (or never
   * finished) go first and never count; of the rest, the newest `keep` stay. Never one in `protect` (the
   * current and previous releases). Returns the ids removed.
   */
  async prune(keep: number, protect: ReadonlySet<string>): Promise<string[]> {
    const releases = await this.list();
    const unfinished = releases.filter((r) => r.status === 'failed' || r.status === 'pending');
    const good = releases.filter((r) => r.status !== 'failed' && r.status !== 'pending');
    const excess = [...unfinished, ...good.slice(0, Math.max(0, good.length - keep))].map((r) => r.id).filter((id) => !protect.has(id));
    for (const id of excess) {
      await removeTree(path.join(this.dir, id));
      await rm(this.metaPath(id), { force: true });
    }
    return excess;
  }

  /**
   * releases_dir, made if missing (then true). Releases, their sidecars and staging trees are made in it by path, so
   * it (or, before it exists, its nearest existing parent) must be a directory nobody else can change.
   */
  async ensureDir(): Promise<boolean> {
    await checkRealFilesystem(this.dir, 'releases_dir');
    await checkTrustedDir(await nearestExisting(this.dir), `releases_dir ${this.dir}`, { sticky: true });
    const existed = await lstat(this.dir).then(
      () => true,
      () => false,
    );
    await makeDirs(this.dir, 0o755);
    await checkTrustedDir(this.dir, `releases_dir ${this.dir}`);
    return !existed;
  }

  dirOf(id: string): string {
    return path.join(this.dir, id);
  }

  private metaPath(id: string): string {
    return path.join(this.dir, `.${id}.json`);
  }

  private historyPath(): string {
    return path.join(this.dir, '.switches.json');
  }
}

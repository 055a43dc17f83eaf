import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { errorMessage, StretcherError } from '../shared/errors.js';
import { checkRealFilesystem, makeDirs } from './dirs.js';
import { checkTrustedDir, nearestExisting, untrustedBecause, UntrustedPathError } from './trust.js';
import type { Log } from '../shared/log.js';
import type { Validators } from '../transfer/sources/index.js';
import { fallbackLockDir, STATE } from './paths.js';

export interface DeployRecord {
  dest: string;
  time: string;
  result: 'success' | 'failure' | 'rollback';
  /** release strategy: the release dest points at after this deploy or rollback. */
  release?: string;
  manifest_url: string;
  checksum?: string;
  event_id?: string;
  duration_ms: number;
  error?: string;
  /** The error's stable code (CHECKSUM_MISMATCH, COMMAND_FAILED...), for scripts; absent for a bug. */
  error_code?: string;
  /** The last successful deploy, kept across failures: what hooks see as the previous version. */
  last_success?: { time: string; manifest_url: string; checksum?: string; release?: string };
  /** A signed manifest's serial (--verify-key), and the highest one deployed successfully to this dest. */
  serial?: number;
  highest_serial?: number;
}

/** What `stretcher watch` remembers about a URL between polls and across restarts. */
export interface WatchRecord {
  url: string;
  validators?: Validators;
  /** sha256 of the manifest bytes last deployed successfully. */
  deployed_sha256?: string;
  deployed_at?: string;
  /** What failed: the manifest's sha256, with the commits its git sources' refs pointed at (`sha:c1,c2`). */
  failed_sha256?: string;
  failures: number;
  /** The commits the unpinned git sources of the deployed manifest resolved to, in order (watch follows them). */
  git_commits?: string[];
}

/** How many handled Consul event IDs are remembered; a watch re-sends only its recent buffer. */
const MAX_EVENT_IDS = 256;

/**
 * What stretcher remembers between runs: the last deploy per dest and the Consul event IDs already
 * handled (consul watch re-sends its buffered events whenever it restarts). A state directory that cannot
 * be created (a non-root user, a read-only /var) is a warning, not a failed deploy; one that another user
 * could change (it holds the locks and the serials that stop replayed manifests) is refused.
 */
export class StateStore {
  private usable: boolean | undefined;

  constructor(
    readonly dir: string,
    private readonly log: Log,
  ) {}

  /**
   * Makes the directory ready, or says why it cannot be: false (and a warning) when it cannot be made or
   * written; an error when it is in /proc or another user could change it.
   */
  async open(): Promise<boolean> {
    if (this.usable !== undefined) return this.usable;
    await checkRealFilesystem(this.dir, 'the state directory');
    const nearest = await nearestExisting(this.dir);
    if (!(await lstat(nearest)).isDirectory()) return this.unusable(`${nearest} is not a directory`);
    // Made by us in a sticky /tmp, it is ours: others cannot rename it, and one they made first is refused below.
    await checkTrustedDir(nearest, `the state directory ${this.dir}`, { sticky: true });
    try {
      await makeDirs(this.dir, 0o700);
      await checkTrustedDir(this.dir, `the state directory ${this.dir}`);
      for (const sub of [STATE.deploys, STATE.watch, STATE.locks]) {
        const dir = path.join(this.dir, sub);
        await makeDirs(dir, 0o700);
        // Made by an older run or by hand, it may be anybody's: records, serials and locks are opened in it by path.
        const st = await lstat(dir);
        const why = st.isDirectory() ? untrustedBecause(st) : 'is not a directory';
        if (why)
          throw new UntrustedPathError(
            `refusing the state directory ${this.dir}: ${dir} ${why}, so another user could change the records and locks in it; make it root's (chown root ${dir} && chmod 700 ${dir}), or set --state-dir to a private directory`,
          );
      }
      this.usable = true;
    } catch (err) {
      if (err instanceof StretcherError) throw err;
      return this.unusable(errorMessage(err));
    }
    return this.usable;
  }

  private unusable(why: string): boolean {
    this.log.warn(`state directory ${this.dir} is not usable (${why}); set --state-dir or STRETCHER_STATE_DIR`);
    this.usable = false;
    return false;
  }

  private ready(): Promise<boolean> {
    return this.open();
  }

  /**
   * Locks live in the state directory, so every stretcher on the host finds them; else in a directory of
   * this user's in TMPDIR, which must be private: lock files are opened by path.
   */
  async lockDir(): Promise<string> {
    if (await this.ready()) return path.join(this.dir, STATE.locks);
    const tmp = tmpdir();
    await checkTrustedDir(tmp, `TMPDIR ${tmp}`, { sticky: true });
    const dir = fallbackLockDir(tmp);
    await mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    const st = await lstat(dir);
    if (!st.isDirectory() || st.uid !== (process.geteuid?.() ?? 0) || (st.mode & 0o077) !== 0) {
      const what = st.isDirectory() ? `it ${untrustedBecause(st) ?? `has mode ${(st.mode & 0o7777).toString(8)}`}` : 'it is not a directory';
      throw new UntrustedPathError(
        `refusing the lock directory ${dir}: ${what}, and only a private directory of this user's may hold its locks; remove it, or set --state-dir to a directory this user can write`,
      );
    }
    return dir;
  }

  /** Where git sources are cached: the state directory's git/, root's own; undefined when it is not usable. */
  async gitCacheDir(): Promise<string | undefined> {
    if (!(await this.ready())) return undefined;
    const dir = path.join(this.dir, STATE.git);
    await makeDirs(dir, 0o700);
    await checkTrustedDir(dir, `the git cache ${dir}`);
    return dir;
  }

  async hasHandledEvent(id: string): Promise<boolean> {
    return (await this.readJson<string[]>(STATE.consulEvents))?.includes(id) ?? false;
  }

  async rememberEvent(id: string): Promise<void> {
    if (!(await this.ready())) return;
    const ids = ((await this.readJson<string[]>(STATE.consulEvents)) ?? []).filter((x) => x !== id);
    ids.push(id);
    await this.writeJson(STATE.consulEvents, ids.slice(-MAX_EVENT_IDS));
  }

  async lastDeploy(dest: string): Promise<DeployRecord | undefined> {
    return this.readJson<DeployRecord>(STATE.deployRecord(dest));
  }

  async watchRecord(url: string): Promise<WatchRecord | undefined> {
    return this.readJson<WatchRecord>(STATE.watchRecord(url));
  }

  async saveWatchRecord(url: string, record: WatchRecord): Promise<void> {
    if (!(await this.ready())) return;
    await this.writeJson(STATE.watchRecord(url), record);
  }

  async allDeploys(): Promise<DeployRecord[]> {
    const names = await readdir(path.join(this.dir, STATE.deploys)).catch(() => [] as string[]);
    const records = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => this.readJson<DeployRecord>(path.join(STATE.deploys, n))));
    return records.filter((r): r is DeployRecord => r !== undefined).sort((a, b) => a.dest.localeCompare(b.dest));
  }

  /** The last deploy's log, or undefined when none was kept. */
  async lastLog(dest: string): Promise<string | undefined> {
    return readFile(path.join(this.dir, STATE.deployLog(dest)), 'utf8').catch(() => undefined);
  }

  /** `log`: the deploy's whole log (already scrubbed, line by line), kept for `status --log`. */
  async recordDeploy(given: DeployRecord, log?: string): Promise<void> {
    if (!(await this.ready())) return;
    // What is kept on disk and printed by `status` is scrubbed as the log is.
    const scrub = (text: string): string => this.log.redactor.text(text);
    if (log !== undefined) await this.writeText(STATE.deployLog(given.dest), scrub(log));
    const record: DeployRecord = { ...given, manifest_url: scrub(given.manifest_url), ...(given.error !== undefined ? { error: scrub(given.error) } : {}) };
    const before = await this.lastDeploy(record.dest);
    const success =
      record.result === 'failure'
        ? before?.last_success
        : {
            time: record.time,
            manifest_url: record.manifest_url,
            ...(record.checksum ? { checksum: record.checksum } : {}),
            ...(record.release ? { release: record.release } : {}),
          };
    // The serial that replayed manifests are held against only ever grows, and only with a success.
    const candidates = [before?.highest_serial, record.result === 'success' ? record.serial : undefined].filter((n): n is number => n !== undefined);
    const highest = candidates.length ? { highest_serial: Math.max(...candidates) } : {};
    await this.writeJson(STATE.deployRecord(record.dest), { ...record, ...(success ? { last_success: success } : {}), ...highest });
  }

  private async readJson<T>(rel: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(path.join(this.dir, rel), 'utf8')) as T;
    } catch {
      return undefined;
    }
  }

  /** Whether records can be written: signed deploys need it, for the serials that stop replays. */
  get recordable(): boolean {
    return this.usable === true;
  }

  private writeJson(rel: string, value: unknown): Promise<void> {
    return this.writeText(rel, `${JSON.stringify(value, null, 2)}\n`);
  }

  /** Temp file + rename: a crash leaves the old file or the new one, never half of one. */
  private async writeText(rel: string, text: string): Promise<void> {
    const file = path.join(this.dir, rel);
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      this.log.warn(`cannot write state file ${file}: ${errorMessage(err)}`);
    }
  }
}

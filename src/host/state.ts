import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { errorMessage } from '../shared/errors.js';
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
}

/** What `stretcher watch` remembers about a URL between polls and across restarts. */
export interface WatchRecord {
  url: string;
  validators?: Validators;
  /** sha256 of the manifest bytes last deployed successfully. */
  deployed_sha256?: string;
  deployed_at?: string;
  failed_sha256?: string;
  failures: number;
}

/** How many handled Consul event IDs are remembered; a watch re-sends only its recent buffer. */
const MAX_EVENT_IDS = 256;

/**
 * What stretcher remembers between runs: the last deploy per dest and the Consul event IDs already
 * handled (consul watch re-sends its buffered events whenever it restarts). A state directory that cannot
 * be created (a non-root user, a read-only /var) is a warning, not a failed deploy.
 */
export class StateStore {
  private usable: boolean | undefined;

  constructor(
    readonly dir: string,
    private readonly log: Log,
  ) {}

  private async ready(): Promise<boolean> {
    if (this.usable === undefined) {
      try {
        await mkdir(path.join(this.dir, STATE.deploys), { recursive: true, mode: 0o700 });
        await mkdir(path.join(this.dir, STATE.watch), { recursive: true, mode: 0o700 });
        this.usable = true;
      } catch (err) {
        this.log.warn(`state directory ${this.dir} is not usable (${errorMessage(err)}); set --state-dir or STRETCHER_STATE_DIR`);
        this.usable = false;
      }
    }
    return this.usable;
  }

  /** Locks live in the state directory, so every stretcher on the host finds them; else in TMPDIR. */
  async lockDir(): Promise<string> {
    return (await this.ready()) ? path.join(this.dir, STATE.locks) : fallbackLockDir(tmpdir());
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

  async recordDeploy(record: DeployRecord): Promise<void> {
    if (!(await this.ready())) return;
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
    await this.writeJson(STATE.deployRecord(record.dest), { ...record, ...(success ? { last_success: success } : {}) });
  }

  private async readJson<T>(rel: string): Promise<T | undefined> {
    try {
      return JSON.parse(await readFile(path.join(this.dir, rel), 'utf8')) as T;
    } catch {
      return undefined;
    }
  }

  /** Temp file + rename: a crash leaves the old record or the new one, never half of one. */
  private async writeJson(rel: string, value: unknown): Promise<void> {
    const file = path.join(this.dir, rel);
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      this.log.warn(`cannot write state file ${file}: ${errorMessage(err)}`);
    }
  }
}

import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { until } from './wait.js';

const GIT_ENV = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8' }).trim();
}

/** A work tree with a bare repository beside it that tests push to and stretcher fetches from. */
export class Repo {
  readonly work: string;
  readonly bare: string;

  constructor(root: string, name = 'app') {
    this.work = path.join(root, `${name}-work`);
    this.bare = path.join(root, 'repos', `${name}.git`);
    mkdirSync(this.work, { recursive: true });
    mkdirSync(path.dirname(this.bare), { recursive: true });
    git(root, 'init', '-q', '--bare', '-b', 'main', this.bare);
    git(this.work, 'init', '-q', '-b', 'main');
    git(this.work, 'remote', 'add', 'origin', this.bare);
  }

  /** Writes files (a body, or `{ link }` for a symlink, `{ body, exec }`), commits, pushes `branch`; returns the commit id. */
  commit(files: Record<string, string | { link: string } | { body: string; exec: true }>, message = 'change', branch = 'main'): string {
    for (const [rel, content] of Object.entries(files)) {
      const abs = path.join(this.work, rel);
      mkdirSync(path.dirname(abs), { recursive: true });
      if (typeof content === 'string') writeFileSync(abs, content);
      else if ('link' in content) symlinkSync(content.link, abs);
      else writeFileSync(abs, content.body, { mode: 0o755 });
    }
    git(this.work, 'add', '-A');
    git(this.work, 'commit', '-q', '--allow-empty', '-m', message);
    git(this.work, 'push', '-q', '-f', 'origin', `HEAD:refs/heads/${branch}`);
    return git(this.work, 'rev-parse', 'HEAD');
  }
}

/** Objects in a repository, loose and packed: what a fetch added. */
export function objectCount(gitDir: string): number {
  const out = git(gitDir, 'count-objects', '-v');
  const n = (k: string): number => Number(new RegExp(`^${k}: (\\d+)`, 'm').exec(out)?.[1] ?? 0);
  return n('count') + n('in-pack');
}

/** The cache repositories in a state directory. */
export function caches(state: string): string[] {
  const dir = path.join(state, 'git');
  return readdirSync(dir)
    .filter((n) => n.endsWith('.git'))
    .map((n) => path.join(dir, n));
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A real `git daemon` on 127.0.0.1 serving `base` (every repository exported), killed by its pid after the test. */
export async function gitDaemon(t: TestContext, base: string): Promise<{ url: (repo: string) => string; port: number }> {
  const port = await freePort();
  const child = spawn('git', ['daemon', '--reuseaddr', `--base-path=${base}`, '--export-all', '--listen=127.0.0.1', `--port=${port}`, base], { stdio: 'ignore', env: GIT_ENV });
  t.after(() => {
    if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
  });
  await until(
    () =>
      new Promise<boolean>((resolve) => {
        const c = createConnection({ host: '127.0.0.1', port }, () => {
          c.destroy();
          resolve(true);
        });
        c.once('error', () => resolve(false));
      }),
    'git daemon listening',
  );
  return { port, url: (repo) => `git://127.0.0.1:${port}/${repo}` };
}

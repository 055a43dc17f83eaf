import { spawn } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';

/** A local user with no privileges: the app user, or anyone with a shell on the host. */
export const ATTACKER = 1001;

export const isRoot = process.getuid?.() === 0;

/** Skips the test unless it runs as root: playing another user needs setpriv, which needs root. */
export function needsRoot(t: TestContext): boolean {
  if (isRoot) return true;
  t.skip('needs root, to act as another local user with setpriv');
  return false;
}

export interface Attack {
  /** What the attacker's script printed (its counters, as JSON), once it ended. */
  done: Promise<Record<string, number>>;
}

/**
 * Runs `body` (the inside of an async function) as uid/gid ATTACKER with setpriv, in a node process of
 * its own, until it returns or `limitMs` passes: every attack loop is bounded. The script sees `deadline`
 * (a time in ms) and node's fs module as `fs`, and returns an object of counters, which `done` resolves
 * to. Its files live in `dir`, which must be readable by that user.
 */
export function attack(dir: string, body: string, limitMs = 20_000): Attack {
  const file = path.join(dir, `attack-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(
    file,
    `import fs from 'node:fs';\nimport path from 'node:path';\nconst deadline = Date.now() + ${limitMs};\nconst result = await (async () => {\n${body}\n})();\nprocess.stdout.write(JSON.stringify(result ?? {}));\n`,
  );
  chmodSync(file, 0o644);
  const child = spawn('setpriv', ['--reuid', String(ATTACKER), '--regid', String(ATTACKER), '--clear-groups', process.execPath, file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), limitMs + 10_000);
  const done = new Promise<Record<string, number>>((resolve, reject) => {
    child.on('close', (code) => {
      clearTimeout(killer);
      if (code !== 0) return reject(new Error(`the attacker's script exited with ${code}: ${err}`));
      try {
        resolve(JSON.parse(out || '{}') as Record<string, number>);
      } catch {
        reject(new Error(`the attacker's script printed ${JSON.stringify(out)}: ${err}`));
      }
    });
  });
  return { done };
}

/** What an attacker would want to harm: a root-owned file's bytes, mode, owner and link count. */
export function fingerprint(file: string): string {
  const st = statSync(file);
  return `${readFileSync(file, 'utf8')}|${(st.mode & 0o7777).toString(8)}|${st.uid}:${st.gid}|${st.nlink}`;
}

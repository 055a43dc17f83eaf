import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { listTree, Scenario } from '../helpers/scenario.js';
import { tar } from '../helpers/tar.js';
import { until } from '../helpers/wait.js';

test('two deploys to one dest run one after the other, never interleaved', async (t) => {
  const s = new Scenario(t);
  const log = `${s.out}/timeline`;
  s.manifest(`${s.archive(tar([{ path: 'a' }]))}commands:
  pre:
    - echo "start $ID" >> ${log}; sleep 1; echo "end $ID" >> ${log}
  post:
    - echo "post $ID" >> ${log}
`);
  const runs = [1, 2].map((id) => s.run(`${s.root}/manifest.yml`, { env: { ID: String(id) } }));
  const results = await Promise.all(runs);
  for (const r of results) assert.equal(r.code, 0, r.stderr);
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  assert.equal(lines.length, 6);
  const first = (lines[0] as string).split(' ')[1];
  const second = first === '1' ? '2' : '1';
  assert.deepEqual(lines, [`start ${first}`, `end ${first}`, `post ${first}`, `start ${second}`, `end ${second}`, `post ${second}`]);
  assert.ok(
    results.some((r) => /waiting for another deploy to \S+ \(pid \d+\) to finish/.test(r.stderr)),
    'the second says it waits',
  );
});

/** A flock(1) that takes a second to start, as on a loaded machine: the lock is free, only slow to take. */
function slowFlock(s: Scenario): NodeJS.ProcessEnv {
  const bin = path.join(s.root, 'slow-bin');
  mkdirSync(bin, { recursive: true });
  const real = execFileSync('sh', ['-c', 'command -v flock'], { encoding: 'utf8' }).trim();
  writeFileSync(path.join(bin, 'flock'), `#!/bin/sh\nsleep 1\nexec ${real} "$@"\n`, { mode: 0o755 });
  return { PATH: `${bin}:${process.env.PATH}` };
}

test('the lock names a real holder: a slow lock with no contender is not "waiting", nor does it name an exited deploy', async (t) => {
  const s = new Scenario(t);
  s.manifest(`dest: ${s.dest}\ncommands:\n  pre: ["true"]\n`);
  let firstPid = 0;
  const first = await s.run(`${s.root}/manifest.yml`, { onSpawn: (p) => (firstPid = p) });
  assert.equal(first.code, 0, first.stderr);
  const env = slowFlock(s);
  const second = await s.run(`${s.root}/manifest.yml`, { env });
  assert.equal(second.code, 0, second.stderr);
  assert.doesNotMatch(second.stderr, /waiting for another deploy/, `no contender (the last holder, pid ${firstPid}, has exited)`);

  // A real contender is named by its own pid, even when taking the lock is slow.
  s.manifest(`dest: ${s.dest}\ncommands:\n  pre: ["touch ${s.out}/holding; sleep 3"]\n`, 'hold.yml');
  let holderPid = 0;
  const holder = s.run(`${s.root}/hold.yml`, { onSpawn: (p) => (holderPid = p) });
  await until(() => existsSync(`${s.out}/holding`), 'the holder');
  const waiter = await s.run(`${s.root}/manifest.yml`, { env });
  assert.equal(waiter.code, 0, waiter.stderr);
  assert.match(waiter.stderr, new RegExp(`waiting for another deploy to ${s.dest} \\(pid ${holderPid}\\) to finish`));
  assert.equal((await holder).code, 0);
});

test('deploys to different dests do not wait for each other', async (t) => {
  const s = new Scenario(t);
  for (const n of ['one', 'two']) {
    s.manifest(`dest: ${s.root}/srv/${n}\ncommands:\n  pre: ["touch ${s.out}/${n}.started; while [ ! -f ${s.out}/one.started ] || [ ! -f ${s.out}/two.started ]; do sleep 0.05; done"]\n`, `${n}.yml`);
  }
  const results = await Promise.all(['one', 'two'].map((n) => s.run(`${s.root}/${n}.yml`)));
  for (const r of results) assert.equal(r.code, 0, r.stderr);
});

test('--lock-timeout: the second deploy gives up clearly, naming the holder', async (t) => {
  const s = new Scenario(t);
  s.manifest(`dest: ${s.dest}\ncommands:\n  pre: ["touch ${s.out}/holding; sleep 5"]\n  failure: ["cat > ${s.out}/failure.stdin"]\n`);
  let holderPid = 0;
  const holder = s.run(`${s.root}/manifest.yml`, { onSpawn: (p) => (holderPid = p) });
  await until(() => existsSync(`${s.out}/holding`), 'the first deploy to hold the lock');
  s.manifest(`dest: ${s.dest}\ncommands:\n  failure: ["cat > ${s.out}/second.failure"]\n`, 'second.yml');
  const second = await s.run(`${s.root}/second.yml`, { args: ['--lock-timeout', '500ms'] });
  assert.equal(second.code, 1);
  assert.match(second.stderr, new RegExp(`another deploy to ${s.dest} \\(pid ${holderPid}\\) still holds its lock after 500ms \\(--lock-timeout\\)`));
  assert.ok(existsSync(`${s.out}/second.failure`), 'failure commands ran');
  process.kill(holderPid, 'SIGTERM');
  await holder;
});

test('a lock held by a SIGKILLed deploy never blocks the next one; its temp files are removed by the next run', async (t) => {
  const s = new Scenario(t);
  // $$ is the hook's shell, leader of its own process group (stretcher starts every command that way).
  s.manifest(`${s.archive(tar([{ path: 'v2' }]))}commands:\n  pre: ["echo $$ > ${s.out}/hook-group; touch ${s.out}/in-pre; sleep 60"]\n`);
  let pid = 0;
  const killed = s.run(`${s.root}/manifest.yml`, { onSpawn: (p) => (pid = p) });
  await until(() => existsSync(`${s.out}/in-pre`), 'pre to start');
  assert.ok(
    readdirSync(s.tmp).some((n) => n.startsWith(`stretcher-${pid}-`)),
    'the download sits in a work dir',
  );
  process.kill(pid, 'SIGKILL');
  await killed;
  // Nothing can clean up after SIGKILL, which is the point; the orphaned hook's group is ended here.
  const group = Number(readFileSync(`${s.out}/hook-group`, 'utf8'));
  t.after(() => {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  // The killed process's hook (sleep) may linger; the lock must not depend on it.
  s.manifest(`${s.archive(tar([{ path: 'v2' }]))}`, 'manifest.yml');
  const next = await s.run(`${s.root}/manifest.yml`, { args: ['--lock-timeout', '5s'] });
  assert.equal(next.code, 0, next.stderr);
  assert.match(next.stderr, new RegExp(`removed \\S+stretcher-${pid}-\\S+, left by an interrupted deploy`));
  assert.deepEqual(listTree(s.dest), ['v2']);
  assert.deepEqual(s.leftovers(), []);
});

test('mv: a deploy killed between its two renames is repaired by the next run, even one that fails', async (t) => {
  const s = new Scenario(t);
  // What a SIGKILL between "rename dest aside" and "rename staging in" leaves: no dest, the old tree aside,
  // and a half-finished staging tree, all named after a process that no longer exists.
  const dead = 999_999;
  const parent = path.dirname(s.dest);
  mkdirSync(path.join(parent, `.app.stretcher-old-${dead}-abcd`));
  writeFileSync(path.join(parent, `.app.stretcher-old-${dead}-abcd`, 'v1'), 'v1');
  mkdirSync(path.join(parent, `.app.stretcher-new-${dead}-efgh`));
  const lines = s.archive(tar([{ path: 'v2' }])).replace(/checksum: \w+/, `checksum: ${'1'.repeat(40)}`);
  s.manifest(`${lines}sync_strategy: mv\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1, 'the checksum is wrong on purpose');
  assert.match(r.stderr, /restored \S+ from an interrupted deploy/);
  assert.deepEqual(listTree(s.dest), ['v1'], 'dest is the old version, never neither');
  assert.deepEqual(s.leftovers(), []);
});

test('status prints the last deploy of each dest, in text and JSON, without credentials', async (t) => {
  const s = new Scenario(t);
  s.manifest(s.archive(tar([{ path: 'a' }])));
  assert.equal((await s.run(`${s.root}/manifest.yml`)).code, 0);
  s.manifest(`dest: ${s.root}/srv/other\ncommands:\n  pre: ["false"]\n`, 'other.yml');
  assert.equal((await s.run(`${s.root}/other.yml`)).code, 1);
  const text = await s.run('', { args: ['status'] });
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`^${s.dest}: success at \\S+ in \\S+ [0-9a-f]{12} from file://${s.root}/manifest.yml$`, 'm'));
  assert.match(text.stdout, new RegExp(`^${s.root}/srv/other: failure at .*\\n  error: pre command failed: "false" exited with status 1$`, 'm'));
  const json = await s.run('', { args: ['status', '--json', '--dest', s.dest] });
  const record = JSON.parse(json.stdout) as Record<string, unknown>;
  assert.equal(record.result, 'success');
  assert.equal(record.dest, s.dest);
  assert.match(String(record.checksum), /^[0-9a-f]{40}$/);
  assert.equal(typeof record.duration_ms, 'number');
  const none = await s.run('', { args: ['status', '--dest', '/srv/never'] });
  assert.equal(none.code, 1);
});

test('state files are written atomically: no temp files remain, and each is valid JSON', async (t) => {
  const s = new Scenario(t);
  s.manifest(s.archive(tar([{ path: 'a' }])));
  for (let i = 0; i < 3; i++) assert.equal((await s.run(`${s.root}/manifest.yml`)).code, 0);
  const files = readdirSync(path.join(s.state, 'deploys')).sort();
  assert.equal(files.length, 2, 'the record and the log, no temp files');
  assert.ok(files[0]?.endsWith('.json'));
  assert.ok(files[1]?.endsWith('.log'));
  JSON.parse(readFileSync(path.join(s.state, 'deploys', files[0] as string), 'utf8'));
});

test('secret environment values never reach the log, even when a command prints them', async (t) => {
  const s = new Scenario(t);
  s.manifest(`commands:\n  pre: ["echo key=$AWS_SECRET_ACCESS_KEY token=$AWS_SESSION_TOKEN"]\n  success: ["cat > ${s.out}/log"]\n`);
  const r = await s.run(`${s.root}/manifest.yml`, { env: { AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG', AWS_SESSION_TOKEN: 'FwoGZXIvYXdzEBY' } });
  assert.equal(r.code, 0, r.stderr);
  for (const text of [r.stderr, readFileSync(`${s.out}/log`, 'utf8')]) {
    assert.doesNotMatch(text, /wJalrXUtnFEMI|FwoGZXIvYXdzEBY/);
    assert.match(text, /key=REDACTED token=REDACTED/);
  }
});

test('signed manifests: openssl-made signatures verify; unsigned, tampered or wrongly signed ones run nothing', async (t) => {
  const s = new Scenario(t);
  const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { cwd: s.root });
  sh('openssl genpkey -algorithm ed25519 -out key.pem && openssl pkey -in key.pem -pubout -out key.pub');
  sh('openssl genpkey -algorithm ed25519 -out old.pem && openssl pkey -in old.pem -pubout -out old.pub');
  const manifest = `${s.archive(tar([{ path: 'signed' }]))}manifest_url: ${s.root}/manifest.yml\nserial: 1\ncommands:\n  pre: ["touch ${s.out}/pre-ran"]\n  failure: ["touch ${s.out}/failure-ran"]\n`;
  s.manifest(manifest);
  sh('openssl pkeyutl -sign -rawin -inkey key.pem -in manifest.yml -out manifest.yml.sig');

  const ok = await s.run(`${s.root}/manifest.yml`, { args: ['--verify-key', `${s.root}/old.pub`, '--verify-key', `${s.root}/key.pub`] });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /manifest signature verified/);
  assert.deepEqual(listTree(s.dest), ['signed']);

  // base64 signatures and the environment variable work too
  sh('base64 manifest.yml.sig > b64.sig && mv b64.sig manifest.yml.sig');
  const viaEnv = await s.run(`${s.root}/manifest.yml`, { env: { STRETCHER_VERIFY_KEY: readFileSync(`${s.root}/key.pub`, 'utf8') } });
  assert.equal(viaEnv.code, 0, viaEnv.stderr);

  const refused: [string, () => void, RegExp][] = [
    ['tampered', () => writeFileSync(`${s.root}/manifest.yml`, manifest.replace('pre-ran', 'evil')), /does not match its signature under the verify key; refusing to deploy it/],
    ['unsigned', () => sh('rm manifest.yml.sig'), /is unsigned or its signature cannot be fetched \(no such file: \S+manifest\.yml\.sig\)/],
    ['wrong key', () => sh('openssl pkeyutl -sign -rawin -inkey old.pem -in manifest.yml -out manifest.yml.sig'), /does not match its signature/],
    ['garbage signature', () => writeFileSync(`${s.root}/manifest.yml.sig`, 'not a signature'), /is not an Ed25519 signature/],
  ];
  for (const [name, setup, expected] of refused) {
    sh(`rm -f ${s.out}/pre-ran ${s.out}/failure-ran`);
    s.manifest(manifest);
    sh('openssl pkeyutl -sign -rawin -inkey key.pem -in manifest.yml -out manifest.yml.sig');
    setup();
    const r = await s.run(`${s.root}/manifest.yml`, { args: ['--verify-key', `${s.root}/key.pub`] });
    assert.equal(r.code, 1, name);
    assert.match(r.stderr, expected, name);
    assert.equal(existsSync(`${s.out}/pre-ran`), false, `${name}: nothing ran`);
    assert.equal(existsSync(`${s.out}/failure-ran`), false, `${name}: not even the unverified failure commands`);
  }
  const badKey = await s.run(`${s.root}/manifest.yml`, { args: ['--verify-key', `${s.root}/key.pem`] });
  assert.equal(badKey.code, 1);
  assert.match(badKey.stderr, /verify key \S+key\.pem holds no PEM public key/);
});

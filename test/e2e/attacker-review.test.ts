import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, lstatSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ATTACKER, attack, needsRoot } from '../helpers/attacker.js';
import { Scenario } from '../helpers/scenario.js';
import { tar } from '../helpers/tar.js';

/**
 * A second review of the hardened deploy, as another local user: what the merge keeps in place, what a
 * rollback trusts, and where a file's inode (not only its path) is in another user's hands.
 */

function scenario(t: import('node:test').TestContext): Scenario {
  const s = new Scenario(t);
  // The attacker must be able to reach what it attacks (tests' temp dirs are 0700).
  chmodSync(s.root, 0o755);
  chownSync(s.out, ATTACKER, ATTACKER);
  return s;
}

test("the merge never re-owns a file another user could still write: a root-owned file from the archive is a new inode, not the app's old one chowned", async (t) => {
  if (!needsRoot(t)) return;
  const s = scenario(t);
  const script = '#!/bin/sh\necho restarting\n';
  // v1 shipped bin/restart.sh owned by the app user, in a directory only root can change.
  s.manifest(
    s.archive(
      tar([
        { path: 'bin/', type: 'dir' },
        { path: 'bin/restart.sh', body: script, mode: 0o755, uid: ATTACKER, gid: ATTACKER },
        { path: 'VERSION', body: 'v1' },
      ]),
    ),
  );
  const first = await s.run(`${s.root}/manifest.yml`);
  assert.equal(first.code, 0, first.stderr);
  const file = path.join(s.dest, 'bin', 'restart.sh');
  assert.equal(lstatSync(file).uid, ATTACKER);
  // The app user keeps a descriptor open for writing while it still owns the file, and writes through it
  // once the inode is root's: root would then run the app user's script.
  const attacker = attack(
    s.root,
    `const fd = fs.openSync(${JSON.stringify(file)}, 'r+');
     fs.writeFileSync(${JSON.stringify(`${s.out}/holding`)}, '');
     let wrote = 0;
     for (;;) {
       const over = fs.existsSync(${JSON.stringify(`${s.out}/done`)}) || Date.now() > deadline;
       if (fs.fstatSync(fd).uid === 0) { fs.writeSync(fd, '#!/bin/sh\\nid > pwned\\n', 0); wrote = 1; break; }
       if (over) break;
       await new Promise((r) => setTimeout(r, 2));
     }
     return { wrote, held: 1 };`,
  );
  const { until } = await import('../helpers/wait.js');
  await until(() => existsSync(`${s.out}/holding`), 'the attacker to open the file');
  // v2: the same script, now owned by root (the operator takes it back from the app).
  s.manifest(
    s.archive(
      tar([
        { path: 'bin/', type: 'dir' },
        { path: 'bin/restart.sh', body: script, mode: 0o755 },
        { path: 'VERSION', body: 'v2' },
      ]),
    ),
  );
  const second = await s.run(`${s.root}/manifest.yml`);
  writeFileSync(`${s.out}/done`, '');
  const seen = await attacker.done;
  assert.equal(second.code, 0, second.stderr);
  assert.equal(seen.held, 1, 'the attacker held a writable descriptor across the deploy');
  assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), 'v2');
  const st = lstatSync(file);
  assert.equal(st.uid, 0, 'root owns the script, as the archive says');
  assert.equal(st.mode & 0o7777, 0o755);
  assert.equal(readFileSync(file, 'utf8'), script, "the root-owned script has the archive's bytes, not the app user's");
  assert.equal(seen.wrote, 0, 'the inode the app user holds never became root-owned');
});

test('the merge never chmods an inode another user can write in place: a group-writable file given a setuid mode is replaced', async (t) => {
  if (!needsRoot(t)) return;
  const s = scenario(t);
  const body = 'tool v1\n';
  s.manifest(
    s.archive(
      tar([
        { path: 'tool', body, mode: 0o664, gid: ATTACKER },
        { path: 'VERSION', body: 'v1' },
      ]),
    ),
  );
  assert.equal((await s.run(`${s.root}/manifest.yml`)).code, 0);
  const file = path.join(s.dest, 'tool');
  const before = lstatSync(file).ino;
  // v2: same bytes, now root:root 04755. Chmodding the old inode would hand the group a writable setuid file.
  s.manifest(
    s.archive(
      tar([
        { path: 'tool', body, mode: 0o4755 },
        { path: 'VERSION', body: 'v2' },
      ]),
    ),
  );
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  const st = lstatSync(file);
  assert.equal(st.mode & 0o7777, 0o4755);
  assert.equal(`${st.uid}:${st.gid}`, '0:0');
  assert.notEqual(st.ino, before, 'a new inode: the group could have held the old one open for writing');
  assert.equal(readFileSync(file, 'utf8'), body);
});

test('rollback runs no hooks from a releases_dir another user can write: its sidecars could say anything', async (t) => {
  if (!needsRoot(t)) return;
  const s = scenario(t);
  const current = path.join(path.dirname(s.dest), 'current');
  const releases = path.join(path.dirname(s.dest), 'releases');
  for (const v of ['v1', 'v2']) {
    const lines = s.archive(tar([{ path: 'VERSION', body: v }]), `${v}.tar`).replace(`dest: ${s.dest}`, `dest: ${current}`);
    const r = await s.run(s.manifest(`${lines}sync_strategy: release\ncommands:\n  post: ["echo ${v} >> ${s.out}/posts"]\n`, `${v}.yml`));
    assert.equal(r.code, 0, r.stderr);
  }
  // Later the app user is given releases_dir (chown -R app /srv/app, say): it rewrites v1's sidecar.
  chownSync(releases, ATTACKER, ATTACKER);
  const attacker = attack(
    s.root,
    `const dir = ${JSON.stringify(releases)};
     let planted = 0;
     for (const n of fs.readdirSync(dir)) {
       if (!/^\\.\\d{8}T.*\\.json$/.test(n) || n.includes('switches')) continue;
       const file = path.join(dir, n);
       // Not readable (0600): the attacker replaces it, which owning the directory allows.
       const id = n.slice(1, -5);
       fs.unlinkSync(file);
       fs.writeFileSync(file, JSON.stringify({ id, checksum: '0', time: '2026-01-01T00:00:00Z', status: 'ok', hooks: { post: ['id -u > ${s.out}/pwned'], success: [], failure: [] } }));
       planted++;
     }
     return { planted };`,
  );
  assert.equal((await attacker.done).planted, 2, 'the attacker replaced the sidecars');
  const r = await s.run('', { args: ['rollback', '--dest', current] });
  assert.equal(existsSync(`${s.out}/pwned`), false, "root ran the app user's command");
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`refusing releases_dir ${releases}: ${releases} is owned by uid ${ATTACKER}`));
  assert.equal(readFileSync(path.join(current, 'VERSION'), 'utf8'), 'v2', 'dest not switched');
  // The operator takes the directory back, but not the files the app user left in it.
  chownSync(releases, 0, 0);
  const again = await s.run('', { args: ['rollback', '--dest', current] });
  assert.equal(existsSync(`${s.out}/pwned`), false, "root ran the app user's command");
  assert.equal(again.code, 1, again.stderr);
  assert.match(again.stderr, new RegExp(`refusing ${releases}/\\.\\S+\\.json: it is owned by uid ${ATTACKER}, mode 0644, so another user could have written what it says`));
  assert.equal(readFileSync(path.join(current, 'VERSION'), 'utf8'), 'v2', 'dest not switched');
  // Listing believes it no more, and says so in one line.
  const listed = await s.run('', { args: ['releases', '--dest', current] });
  assert.equal(listed.code, 1, listed.stderr);
  assert.match(listed.stderr, /^stretcher: refusing \S+\.json: it is owned by uid 1001/m);
  assert.doesNotMatch(listed.stderr, /internal error|\n\s+at /);
});

test("a state directory's deploys/ or locks/ that another user owns is refused: its records hold the serials that stop replays", async (t) => {
  if (!needsRoot(t)) return;
  const s = scenario(t);
  const { mkdirSync, readdirSync } = await import('node:fs');
  // The state directory is root's and readable (an operator's mkdir), but an old chown -R gave its
  // subdirectories to the app user.
  mkdirSync(s.state, { mode: 0o755 });
  chmodSync(s.state, 0o755);
  for (const sub of ['deploys', 'locks', 'watch']) {
    mkdirSync(path.join(s.state, sub));
    chownSync(path.join(s.state, sub), ATTACKER, ATTACKER);
  }
  const victim = path.join(s.root, 'victim-made-by-root');
  const { lockFile } = await import('../../src/host/paths.js');
  const attacker = attack(
    s.root,
    `fs.symlinkSync(${JSON.stringify(victim)}, ${JSON.stringify(lockFile(path.join(s.state, 'locks'), s.dest))});
     fs.writeFileSync(${JSON.stringify(path.join(s.state, 'deploys', 'mine'))}, '');
     return { wrote: 1 };`,
  );
  assert.equal((await attacker.done).wrote, 1);
  s.manifest(s.archive(tar([{ path: 'v1' }])));
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`refusing the state directory ${s.state}: ${s.state}/(deploys|locks|watch) is owned by uid ${ATTACKER}`));
  assert.equal(existsSync(victim), false, 'no file made through the planted lock symlink');
  assert.equal(existsSync(s.dest), false);
  assert.deepEqual(readdirSync(path.join(s.state, 'deploys')), ['mine'], 'no record written where the app user can change it');
});

test('a lease another user holds on a file in dest cannot freeze the merge: a file that cannot be opened at once is replaced, not waited for', async (t) => {
  if (!needsRoot(t)) return;
  const s = scenario(t);
  const { spawn } = await import('node:child_process');
  const body = 'config that does not change\n';
  const archive = (v: string) =>
    tar([
      { path: 'data.txt', body, uid: ATTACKER, gid: ATTACKER },
      { path: 'VERSION', body: v },
    ]);
  s.manifest(s.archive(archive('v1')));
  assert.equal((await s.run(`${s.root}/manifest.yml`)).code, 0);
  const file = path.join(s.dest, 'data.txt');
  // The app user owns data.txt, so it may take a write lease on it (fcntl F_SETLEASE): whoever opens it
  // then blocks until the lease is let go or /proc/sys/fs/lease-break-time (45 s) runs out, for every
  // such file, and a synchronous open blocks the whole process, signals and all. perl-base is in every
  // Debian install.
  const lease = `use Fcntl; my $breaks = 0; $SIG{IO} = sub { $breaks++ };
    sysopen(my $fh, '${file}', O_RDONLY) or die "open: $!"; fcntl($fh, 1024, 1) or die "lease: $!";
    open(my $m, '>', '${s.out}/leased'); close $m;
    my $deadline = time + 30; select(undef, undef, undef, 0.01) until -e '${s.out}/done' || time > $deadline;
    open($m, '>', '${s.out}/released'); close $m; print "{\\"breaks\\":$breaks}";`;
  const child = spawn('setpriv', ['--reuid', String(ATTACKER), '--regid', String(ATTACKER), '--clear-groups', 'perl', '-e', lease], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const ended = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const { until } = await import('../helpers/wait.js');
  await until(() => existsSync(`${s.out}/leased`), 'the attacker to take its lease');
  s.manifest(s.archive(archive('v2')));
  const r = await s.run(`${s.root}/manifest.yml`);
  const stillHeld = !existsSync(`${s.out}/released`);
  writeFileSync(`${s.out}/done`, '');
  await ended;
  assert.equal(r.code, 0, r.stderr);
  assert.ok(stillHeld, 'the deploy finished while the lease was still held');
  assert.ok((JSON.parse(out) as { breaks: number }).breaks >= 1, 'stretcher did reach the leased file');
  assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), 'v2');
  assert.equal(readFileSync(file, 'utf8'), body);
  assert.equal(lstatSync(file).uid, ATTACKER);
});

test('a command that moves a child out of its process group (setsid) cannot hold the deploy past command_timeout; the child is not the command any more, and survives', async (t) => {
  const s = new Scenario(t);
  const marker = `escaped-${process.pid}-${Date.now()}`;
  s.manifest(`${s.archive(tar([{ path: 'v1' }]))}command_timeout: 1s\ncommands:\n  pre: ["setsid sh -c 'trap \\"\\" TERM; sleep 120; :' ${marker}"]\n`);
  const { running } = await import('../helpers/procs.js');
  const started = performance.now();
  const r = await s.run(`${s.root}/manifest.yml`, { timeoutMs: 60_000 });
  const elapsed = performance.now() - started;
  const left = running(marker);
  t.after(() => {
    // The escaped sh leads its own session: its group is its sleep and itself.
    for (const pid of running(marker)) process.kill(-pid, 'SIGKILL');
  });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /pre command failed: .* timed out after 1s \(command_timeout\); its process group was killed/);
  assert.ok(elapsed < 30_000, `the deploy ended on time (${Math.round(elapsed)} ms)`);
  assert.equal(left.length, 1, 'what left the group is out of reach of the group kill, as the README says');
  assert.equal(existsSync(s.dest), false);
});

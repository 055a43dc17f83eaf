import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { lockFile } from '../../src/host/paths.js';
import { ATTACKER, attack, fingerprint, needsRoot } from '../helpers/attacker.js';
import { listTree, Scenario } from '../helpers/scenario.js';
import { sha1, tar } from '../helpers/tar.js';

/**
 * Another local user against a root deploy: for each hole a review reproduced, the attacker's uid does
 * what it did then, in a bounded loop, while the deploy runs (a slow pre holds it open). Each test checks
 * what would have been harmed (a root-owned victim's bytes, mode, owner, link count; a victim
 * directory's entries) and that the attacker really had the access it needed, so that passing cannot
 * come from missing the window.
 */

/** A scenario the attacker can walk into (tests' temp dirs are 0700), and a root-owned victim in it. */
function arena(t: import('node:test').TestContext): { s: Scenario; victim: string; victimDir: string; before: string } {
  const s = new Scenario(t);
  chmodSync(s.root, 0o755);
  const victimDir = path.join(s.root, 'victim');
  mkdirSync(victimDir, { mode: 0o755 });
  const victim = path.join(victimDir, 'shadow');
  writeFileSync(victim, 'root:secret\n', { mode: 0o600 });
  writeFileSync(path.join(victimDir, 'keep'), 'keep');
  return { s, victim, victimDir, before: fingerprint(victim) };
}

const FAILURE = (s: Scenario) => `commands:\n  pre: ["sleep 1"]\n  failure: ["echo \\"$STRETCHER_ERROR\\" > ${s.out}/error"]\n`;

test('hole 1 and 2: a dest whose parent another user can write is refused before anything is made there', async (t) => {
  if (!needsRoot(t)) return;
  const { s, victim, victimDir, before } = arena(t);
  const parent = path.dirname(s.dest);
  chownSync(parent, ATTACKER, ATTACKER);
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'v1'), 'v1');
  s.manifest(`${s.archive(tar([{ path: 'v2', mode: 0o755 }]))}dest_mode: 0755\n${FAILURE(s)}`);
  // The attack that worked: swap the staging directory, and dest itself, for symlinks to root's files.
  const attacker = attack(
    s.root,
    `const parent = ${JSON.stringify(parent)};
     fs.writeFileSync(path.join(parent, 'i-can-write-here'), '');
     let swaps = 0;
     while (Date.now() < deadline && !fs.existsSync(${JSON.stringify(`${s.out}/error`)})) {
       for (const n of fs.readdirSync(parent)) {
         if (!n.includes('.stretcher-')) continue;
         try { fs.renameSync(path.join(parent, n), path.join(parent, 'moved-' + n)); fs.symlinkSync(${JSON.stringify(victim)}, path.join(parent, n)); swaps++; } catch {}
       }
       await new Promise((r) => setTimeout(r, 5));
     }
     return { swaps, wrote: fs.existsSync(path.join(parent, 'i-can-write-here')) ? 1 : 0 };`,
  );
  const r = await s.run(`${s.root}/manifest.yml`);
  const seen = await attacker.done;
  assert.equal(seen.wrote, 1, "the attacker could write dest's parent");
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(
      `ERROR: deploy failed: refusing to deploy to ${s.dest}: ${parent} is owned by uid ${ATTACKER}, mode 0755, so another user could swap what stretcher works on there; make ${parent} owned by root`,
    ),
  );
  assert.match(readFileSync(`${s.out}/error`, 'utf8'), /refusing to deploy to/, 'failure commands ran');
  assert.equal(seen.swaps, 0, 'stretcher made nothing there to swap');
  assert.equal(fingerprint(victim), before);
  assert.deepEqual(readdirSync(victimDir).sort(), ['keep', 'shadow']);
  assert.deepEqual(listTree(s.dest), ['v1'], 'dest untouched');
  // dest itself swapped for a symlink (by whoever could): refused, the target untouched.
  chownSync(parent, 0, 0);
  const { rmSync } = await import('node:fs');
  rmSync(s.dest, { recursive: true });
  symlinkSync(victimDir, s.dest);
  const viaLink = await s.run(`${s.root}/manifest.yml`);
  assert.equal(viaLink.code, 1);
  assert.match(viaLink.stderr, /dest \S+ is a symlink \(to \S+victim\); the rsync strategy deploys into a real directory/);
  assert.deepEqual(readdirSync(victimDir).sort(), ['keep', 'shadow']);
  assert.equal(fingerprint(victim), before);
});

test('hole 3: a releases_dir another user can write is refused; a planted sidecar symlink is never written through', async (t) => {
  if (!needsRoot(t)) return;
  const { s, victim, before } = arena(t);
  const releases = path.join(path.dirname(s.dest), 'releases');
  mkdirSync(releases);
  chownSync(releases, ATTACKER, ATTACKER);
  s.manifest(`${s.archive(tar([{ path: 'v1' }]))}sync_strategy: release\nreleases_dir: ${releases}\n${FAILURE(s)}`);
  const attacker = attack(
    s.root,
    `let planted = 0;
     // Proves the access first: the deploy may refuse before the loop below gets a turn.
     try { fs.writeFileSync(path.join(${JSON.stringify(releases)}, 'mine'), ''); } catch {}
     while (Date.now() < deadline && !fs.existsSync(${JSON.stringify(`${s.out}/error`)})) {
       // Release ids can be read off staging names: plant the sidecar each would write.
       for (const n of fs.readdirSync(${JSON.stringify(releases)})) {
         const m = /^\\.(.+)\\.stretcher-new-/.exec(n);
         if (m) try { fs.symlinkSync(${JSON.stringify(victim)}, path.join(${JSON.stringify(releases)}, '.' + m[1] + '.json')); planted++; } catch {}
       }
       try { fs.writeFileSync(path.join(${JSON.stringify(releases)}, 'mine'), ''); } catch {}
       await new Promise((r) => setTimeout(r, 5));
     }
     return { planted, wrote: fs.existsSync(path.join(${JSON.stringify(releases)}, 'mine')) ? 1 : 0 };`,
  );
  const r = await s.run(`${s.root}/manifest.yml`);
  const seen = await attacker.done;
  assert.equal(seen.wrote, 1, 'the attacker could write releases_dir');
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`refusing releases_dir ${releases}: ${releases} is owned by uid ${ATTACKER}`));
  assert.equal(seen.planted, 0);
  assert.equal(fingerprint(victim), before);
  assert.equal(existsSync(s.dest), false);
});

test('hole 4: debris in a shared TMPDIR that this user did not make is left alone, and never fails the deploy', async (t) => {
  if (!needsRoot(t)) return;
  const { s, victimDir, victim, before } = arena(t);
  chmodSync(s.tmp, 0o1777);
  // Named like a dead deploy's work directory, made by the attacker: a symlink into the victim directory,
  // a tree swapped for one mid-removal, and a tree deeper than PATH_MAX.
  const attacker = attack(
    s.root,
    `const tmp = ${JSON.stringify(s.tmp)};
     fs.mkdirSync(path.join(tmp, 'stretcher-999999-bait'));
     fs.symlinkSync(${JSON.stringify(victimDir)}, path.join(tmp, 'stretcher-999999-bait', 'link'));
     fs.symlinkSync(${JSON.stringify(victimDir)}, path.join(tmp, 'stretcher-999998-link'));
     let deep = path.join(tmp, 'stretcher-999997-deep');
     fs.mkdirSync(deep);
     const process_ = process; process_.chdir(deep);
     for (let i = 0; i < 300; i++) { fs.mkdirSync('d'.repeat(40)); process_.chdir('d'.repeat(40)); }
     fs.writeFileSync('bottom', '');
     let swaps = 0;
     const swapped = path.join(tmp, 'stretcher-999996-swap');
     fs.mkdirSync(swapped);
     while (Date.now() < deadline && !fs.existsSync(${JSON.stringify(`${s.out}/done`)})) {
       try { fs.mkdirSync(path.join(swapped, 'sub')); fs.rmdirSync(path.join(swapped, 'sub')); fs.symlinkSync(${JSON.stringify(victimDir)}, path.join(swapped, 'sub')); fs.unlinkSync(path.join(swapped, 'sub')); swaps++; } catch {}
     }
     return { swaps };`,
  );
  const { until } = await import('../helpers/wait.js');
  await until(() => existsSync(path.join(s.tmp, 'stretcher-999996-swap')), 'the attacker to set up');
  s.manifest(`${s.archive(tar([{ path: 'v1' }]))}commands:\n  post: ["touch ${s.out}/done"]\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  const seen = await attacker.done;
  assert.equal(r.code, 0, r.stderr);
  assert.ok((seen.swaps ?? 0) > 0, 'the attacker was swapping while the deploy ran');
  assert.deepEqual(listTree(s.dest), ['v1']);
  for (const n of ['stretcher-999999-bait', 'stretcher-999998-link', 'stretcher-999997-deep', 'stretcher-999996-swap']) assert.ok(lstatSync(path.join(s.tmp, n)), `${n} is not ours: left alone`);
  assert.deepEqual(readdirSync(victimDir).sort(), ['keep', 'shadow']);
  assert.equal(fingerprint(victim), before);
  assert.doesNotMatch(r.stderr, /ENAMETOOLONG/);
});

test('hole 5: a lock directory in TMPDIR made by another user is refused, and its planted lock file never written', async (t) => {
  if (!needsRoot(t)) return;
  const { s, victim, before } = arena(t);
  chmodSync(s.tmp, 0o1777);
  // The state directory is unusable (a file), so locks would fall back to TMPDIR.
  writeFileSync(s.state, 'not a directory');
  const attacker = attack(
    s.root,
    `const dir = path.join(${JSON.stringify(s.tmp)}, 'stretcher-locks-0');
     fs.mkdirSync(dir, { mode: 0o777 });
     fs.chmodSync(dir, 0o777);
     // Whatever the lock file's name, one planted under each name stretcher could use: here, all of them.
     return { made: fs.existsSync(dir) ? 1 : 0 };`,
  );
  assert.equal((await attacker.done).made, 1);
  const dir = path.join(s.tmp, 'stretcher-locks-0');
  symlinkSync(victim, lockFile(dir, s.dest));
  s.manifest(`${s.archive(tar([{ path: 'v1' }]))}${FAILURE(s)}`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`refusing the lock directory ${dir}: it is owned by uid ${ATTACKER}, mode 0777, and only a private directory of this user's may hold its locks`));
  assert.equal(fingerprint(victim), before);
  assert.equal(existsSync(s.dest), false);
});

test('hole 6: a non-root deploy of read-only directories leaves nothing it cannot remove, deploy after deploy', async (t) => {
  if (!needsRoot(t)) return;
  const s = new Scenario(t);
  chmodSync(s.root, 0o755);
  // Everything this deploy touches belongs to the app user, who runs stretcher itself.
  for (const d of [s.tmp, path.dirname(s.dest), s.out]) chownSync(d, ATTACKER, ATTACKER);
  mkdirSync(s.state);
  chownSync(s.state, ATTACKER, ATTACKER);
  const archive = (v: string) =>
    tar([
      { path: 'ro/', type: 'dir', mode: 0o555 },
      { path: 'ro/file', body: v, mode: 0o444 },
      { path: 'ro/sub/', type: 'dir', mode: 0o555 },
      { path: 'VERSION', body: v },
    ]);
  const run = async (v: string, strategy: string, pre = 'true') => {
    writeFileSync(path.join(s.root, `${v}.tar`), archive(v));
    writeFileSync(path.join(s.root, `${v}.yml`), `src: ${v}.tar\nchecksum: ${sha1(archive(v))}\ndest: ${s.dest}\nsync_strategy: ${strategy}\ncommands:\n  pre: ["${pre}"]\n`);
    const { spawnSync } = await import('node:child_process');
    const { STRETCHER_ARGV } = await import('../helpers/cli.js');
    return spawnSync('setpriv', ['--reuid', String(ATTACKER), '--regid', String(ATTACKER), '--clear-groups', ...STRETCHER_ARGV], {
      input: path.join(s.root, `${v}.yml`),
      env: s.env(),
      cwd: s.out,
      encoding: 'utf8',
      timeout: 60_000,
    });
  };
  for (const [v, strategy] of [
    ['v1', 'rsync'],
    ['v2', 'rsync'],
    ['v3', 'mv'],
    ['v4', 'mv'],
  ] as const) {
    const r = await run(v, strategy);
    assert.equal(r.status, 0, `${v} (${strategy}): ${r.stderr}`);
    assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), v);
    assert.deepEqual(s.leftovers(), [], `${v}: no staging, old tree or work directory left`);
  }
  // A failed deploy's staging tree, read-only directories and all, goes too.
  const failed = await run('v5', 'rsync', 'exit 1');
  assert.equal(failed.status, 1);
  assert.deepEqual(s.leftovers(), []);
  assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), 'v4');
});

test('inside dest: a directory the app user owns is never walked into; swapped for a symlink, it changes nothing outside', async (t) => {
  if (!needsRoot(t)) return;
  const { s, victimDir, victim, before } = arena(t);
  // The app owns uploads/ (excluded, kept) and public/ (deployed): both writable by it.
  s.manifest(
    `${s.archive(
      tar([
        { path: 'public/', type: 'dir' },
        { path: 'public/index.html', body: 'v1' },
        { path: 'app.js', body: 'v1' },
      ]),
    )}excludes: ["uploads/"]\n`,
  );
  assert.equal((await s.run(`${s.root}/manifest.yml`)).code, 0);
  mkdirSync(path.join(s.dest, 'uploads'));
  writeFileSync(path.join(s.dest, 'uploads', 'photo.jpg'), 'photo');
  for (const d of ['public', 'uploads']) chownSync(path.join(s.dest, d), ATTACKER, ATTACKER);
  chownSync(path.join(s.dest, 'uploads', 'photo.jpg'), ATTACKER, ATTACKER);
  s.manifest(
    `${s.archive(
      tar([
        { path: 'public/', type: 'dir' },
        { path: 'public/index.html', body: 'v2' },
        { path: 'public/new.html', body: 'v2' },
        { path: 'app.js', body: 'v2' },
      ]),
    )}excludes: ["uploads/"]\ncommands:\n  pre: ["touch ${s.out}/in-pre; sleep 1"]\n`,
  );
  // While the deploy runs, the app user keeps swapping what is inside its directories for symlinks to
  // root's files and directories.
  const attacker = attack(
    s.root,
    `const pub = ${JSON.stringify(path.join(s.dest, 'public'))};
     let swaps = 0;
     while (Date.now() < deadline && !fs.existsSync(${JSON.stringify(`${s.out}/done`)})) {
       for (const n of ['index.html', 'new.html', 'sub']) {
         try { fs.rmSync(path.join(pub, n), { recursive: true, force: true }); fs.symlinkSync(${JSON.stringify(victim)}, path.join(pub, n)); swaps++; } catch {}
       }
       await new Promise((r) => setTimeout(r, 2));
     }
     return { swaps };`,
  );
  const r = await s.run(`${s.root}/manifest.yml`);
  writeFileSync(`${s.out}/done`, '');
  const seen = await attacker.done;
  assert.equal(r.code, 0, r.stderr);
  assert.ok((seen.swaps ?? 0) > 0, 'the app user was swapping during the deploy');
  assert.equal(fingerprint(victim), before);
  assert.deepEqual(readdirSync(victimDir).sort(), ['keep', 'shadow']);
  // public/ came from the archive whole (its owner is the archive's now), uploads/ was kept.
  assert.equal(readFileSync(path.join(s.dest, 'app.js'), 'utf8'), 'v2');
  assert.equal(readFileSync(path.join(s.dest, 'public', 'index.html'), 'utf8'), 'v2');
  assert.equal(readFileSync(path.join(s.dest, 'uploads', 'photo.jpg'), 'utf8'), 'photo');
  assert.equal(lstatSync(path.join(s.dest, 'public')).uid, 0);
});

/**
 * The archive gives the app user a directory (data/, with many excluded files to prune); the strategy
 * then works by path in the staged tree. The staged tree used to get dest_mode (0755) before that work,
 * so the app user could walk into its own staged directories and swap one for a symlink to root's: root's
 * prune then deleted a root-only file outside dest (a review reproduced it on the first try). The tree
 * must stay out of the app user's reach until it is put in place.
 */
for (const [strategy, update] of [
  ['mv', false],
  ['rsync', false],
  ['release', false],
  // Over the previous version, whose data/ the app user owns: the merge replaces it whole, carrying the
  // excluded files into the staged data/ first.
  ['rsync', true],
] as const) {
  test(`staging: the app user cannot reach the unpacked tree while stretcher works in it (${strategy}${update ? ', update' : ''})`, async (t) => {
    if (!needsRoot(t)) return;
    const { s, victimDir } = arena(t);
    const secret = path.join(victimDir, 'secret.pid');
    writeFileSync(secret, 'root only', { mode: 0o600 });
    // With a `./` entry that gives the tree's root to the app user too, as `tar -C dir .` of its build makes.
    const entries = [
      { path: './', type: 'dir' as const, uid: ATTACKER, gid: ATTACKER, mode: 0o755 },
      { path: 'index.html', body: 'v1' },
      { path: 'data/', type: 'dir' as const, uid: ATTACKER, gid: ATTACKER, mode: 0o755 },
      { path: 'data/sub/', type: 'dir' as const, uid: ATTACKER, gid: ATTACKER, mode: 0o755 },
      ...Array.from({ length: 3000 }, (_, i) => ({ path: `data/sub/f${i}.pid`, body: 'x', uid: ATTACKER, gid: ATTACKER })),
    ];
    const dest = strategy === 'release' ? path.join(path.dirname(s.dest), 'current') : s.dest;
    const where = strategy === 'release' ? path.join(path.dirname(s.dest), 'releases') : path.dirname(s.dest);
    if (update) {
      s.manifest(`${s.archive(tar(entries.slice(0, 4)))}excludes: ["*.pid"]\n`);
      assert.equal((await s.run(`${s.root}/manifest.yml`)).code, 0);
      writeFileSync(path.join(s.dest, 'data', 'sub', 'app.pid'), 'the app');
      chownSync(path.join(s.dest, 'data', 'sub', 'app.pid'), ATTACKER, ATTACKER);
    }
    s.manifest(`${s.archive(tar(entries)).replace(`dest: ${s.dest}`, `dest: ${dest}`)}sync_strategy: ${strategy}\nexcludes: ["*.pid"]\ncommands:\n  pre: ["sleep 0.5"]\n`);
    // The attack that worked: once data/sub of the staged tree can be reached, and still holds what the prune
    // removes, swap it for a symlink to a root-only directory holding a file the prune would match.
    const attacker = attack(
      s.root,
      `const where = ${JSON.stringify(where)};
       let seen = 0, reached = 0, swaps = 0;
       while (Date.now() < deadline && !fs.existsSync(${JSON.stringify(`${s.out}/done`)})) {
         let names = [];
         try { names = fs.readdirSync(where); } catch {}
         for (const n of names) {
           if (!n.includes('.stretcher-new-')) continue;
           seen++;
           const sub = path.join(where, n, 'tree', 'data', 'sub');
           // The layout before the holder: the tree itself beside dest.
           const flat = path.join(where, n, 'data', 'sub');
           try { fs.readdirSync(flat); reached++; fs.renameSync(flat, flat + '-moved'); fs.symlinkSync(${JSON.stringify(victimDir)}, flat); swaps++; } catch {}
           // Pruned already, the tree is being put in place: what the app user does to its own directory
           // from then on, it could do in dest after the deploy.
           try { if (fs.readdirSync(sub).length === 0) continue; } catch { continue; }
           reached++;
           try { fs.renameSync(sub, sub + '-moved'); fs.symlinkSync(${JSON.stringify(victimDir)}, sub); swaps++; } catch {}
         }
       }
       return { seen, reached, swaps };`,
    );
    const r = await s.run(`${s.root}/manifest.yml`);
    writeFileSync(`${s.out}/done`, '');
    const got = await attacker.done;
    assert.equal(r.code, 0, r.stderr);
    assert.ok((got.seen ?? 0) > 0, 'the attacker saw the staged tree while the deploy ran');
    assert.equal(got.reached, 0, 'the app user reached inside the staged tree while stretcher worked in it');
    assert.equal(readFileSync(secret, 'utf8'), 'root only');
    assert.equal(lstatSync(victimDir).mode & 0o7777, 0o755);
    assert.equal(readFileSync(path.join(dest, 'index.html'), 'utf8'), 'v1');
    // dest_mode (0755 by default) is dest's once it is in place.
    assert.equal(lstatSync(dest).isSymbolicLink() ? statSync(dest).mode & 0o7777 : lstatSync(dest).mode & 0o7777, 0o755);
    assert.ok(lstatSync(path.join(dest, 'data', 'sub')).isDirectory());
    assert.deepEqual(readdirSync(path.join(dest, 'data', 'sub')), update ? ['app.pid'] : []);
  });
}

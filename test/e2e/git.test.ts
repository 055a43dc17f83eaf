import assert from 'node:assert/strict';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { caches, git, gitDaemon, objectCount, Repo } from '../helpers/git.js';
import { listTree, Scenario } from '../helpers/scenario.js';
import { sha1, tar } from '../helpers/tar.js';
import { until } from '../helpers/wait.js';

const env = (s: Scenario): string => `  post: ['echo "$STRETCHER_CHECKSUM" > ${s.out}/checksum']\n  failure: ['echo "$STRETCHER_ERROR" > ${s.out}/error']\n`;

/** A repository with enough files that a full fetch and an incremental one are told apart by their objects. */
function bigRepo(s: Scenario): Repo {
  const repo = new Repo(s.root);
  const files: Record<string, string> = {};
  for (let i = 0; i < 40; i++) files[`lib/m${i}.js`] = `module ${i}\n`;
  repo.commit({ ...files, 'bin/run': { body: '#!/bin/sh\necho run\n', exec: true }, 'lib/current': { link: 'm1.js' }, '.gitattributes': 'secret.txt export-ignore\n', 'secret.txt': 'kept\n' }, 'one');
  return repo;
}

test('git: first deploy over git://, then a new commit fetches only its new objects', async (t) => {
  const s = new Scenario(t);
  const repo = bigRepo(s);
  const daemon = await gitDaemon(t, path.join(s.root, 'repos'));
  s.manifest(`src: ${daemon.url('app.git')}\ndest: ${s.dest}\ncommands:\n${env(s)}`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  const head = git(repo.work, 'rev-parse', 'HEAD');
  assert.match(r.stderr, /WARN: git source .* has no checksum/);
  assert.equal(readFileSync(`${s.out}/checksum`, 'utf8').trim(), head);
  assert.equal(statSync(path.join(s.dest, 'lib/m0.js')).mode & 0o7777, 0o644);
  assert.equal(statSync(path.join(s.dest, 'bin/run')).mode & 0o7777, 0o755);
  assert.equal(readlinkSync(path.join(s.dest, 'lib/current')), 'm1.js');
  // As git stores it: export-ignore in the repository's .gitattributes does not drop a file.
  assert.equal(readFileSync(path.join(s.dest, 'secret.txt'), 'utf8'), 'kept\n');
  assert.equal(existsSync(path.join(s.dest, '.git')), false);
  // Files get the commit's time, as an archive of it would.
  const committed = Number(git(repo.work, 'log', '-1', '--format=%ct'));
  assert.equal(Math.round(statSync(path.join(s.dest, 'lib/m0.js')).mtimeMs / 1000), committed);
  const [cache] = caches(s.state);
  assert.ok(cache);
  assert.equal(statSync(cache).mode & 0o777, 0o700);
  const before = objectCount(cache);
  assert.ok(before >= 44, `first fetch: ${before} objects`);

  const second = repo.commit({ 'lib/m0.js': 'module 0, v2\n' }, 'two');
  const r2 = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(readFileSync(path.join(s.dest, 'lib/m0.js'), 'utf8'), 'module 0, v2\n');
  assert.equal(readFileSync(`${s.out}/checksum`, 'utf8').trim(), second);
  // The new commit, its two trees (root and lib/) and the one changed blob: nothing of the 40 others.
  const added = objectCount(cache) - before;
  console.log(`# objects: first fetch ${before}, second fetch added ${added}`);
  assert.ok(added <= 5 && added >= 3, `second fetch added ${added} objects`);
  assert.deepEqual(s.leftovers(), []);
});

test('git: a pinned commit deploys; when the ref moves away from it the deploy is refused, dest untouched', async (t) => {
  const s = new Scenario(t);
  const repo = new Repo(s.root);
  const first = repo.commit({ VERSION: 'v1\n' });
  const src = `git+file://${repo.bare}#main`;
  s.manifest(`src: ${src}\nchecksum: ${first}\ndest: ${s.dest}\ncommands:\n${env(s)}`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /no checksum/);
  assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), 'v1\n');
  const moved = repo.commit({ VERSION: 'v2\n' });
  const r2 = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, new RegExp(`ERROR: deploy failed: checksum mismatch for .*is at commit ${moved}, not the checksum's ${first}`));
  assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), 'v1\n');
  assert.match(readFileSync(`${s.out}/error`, 'utf8'), /checksum mismatch/);
  const record = JSON.parse(readFileSync(path.join(s.state, 'deploys', readdirJson(s)), 'utf8')) as { error_code: string };
  assert.equal(record.error_code, 'CHECKSUM_MISMATCH');
  // A ref that is the commit id itself still deploys it.
  s.manifest(`src: git+file://${repo.bare}#${first}\nchecksum: ${first}\ndest: ${s.dest}\n`);
  const r3 = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r3.code, 0, r3.stderr);
  assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), 'v1\n');
  assert.deepEqual(s.leftovers(), []);
});

function readdirJson(s: Scenario): string {
  return readdirSync(path.join(s.state, 'deploys')).find((n: string) => n.endsWith('.json')) as string;
}

test('git: a subdirectory, in the URL form (//) and after .git/, with a tag and a branch', async (t) => {
  const s = new Scenario(t);
  const repo = new Repo(s.root);
  repo.commit({ 'config/app.yml': 'production\n', 'config/nested/x': 'x\n', README: 'top\n' });
  git(repo.work, 'tag', '-a', '-m', 'release', 'v1');
  git(repo.work, 'push', '-q', 'origin', 'v1');
  const daemon = await gitDaemon(t, path.join(s.root, 'repos'));
  for (const src of [`git+file://${repo.bare}//config#main`, `${daemon.url('app.git')}/config#v1`]) {
    rmSync(s.dest, { recursive: true, force: true });
    s.manifest(`src: ${src}\ndest: ${s.dest}\n`);
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 0, `${src}: ${r.stderr}`);
    assert.deepEqual(listTree(s.dest), ['app.yml', 'nested/', 'nested/x'], src);
  }
});

test('git: a symlink leading out of the tree is refused, dest untouched', async (t) => {
  const s = new Scenario(t);
  const repo = new Repo(s.root);
  for (const [name, link] of [
    ['abs', '/etc/passwd'],
    ['up', '../../etc'],
    ['chain', 'a/b/../..'],
  ] as const) {
    const files: Record<string, string | { link: string }> = { ok: 'ok\n', [`x/${name}`]: { link } };
    if (name === 'chain') files['x/a/b'] = { link: '..' };
    repo.commit(files);
    s.manifest(`src: git+file://${repo.bare}\ndest: ${s.dest}\ncommands:\n${env(s)}`);
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 1, `${name}: ${r.stderr}`);
    assert.match(r.stderr, /ERROR: deploy failed: refusing commit [0-9a-f]{40}: symlink .* points outside the tree/, name);
    assert.equal(existsSync(s.dest), false);
    assert.ok(existsSync(`${s.out}/error`));
    git(repo.work, 'rm', '-rq', 'x');
  }
  assert.deepEqual(s.leftovers(), []);
});

test('git: layers mix a git source with an archive, in order', async (t) => {
  const s = new Scenario(t);
  const repo = new Repo(s.root);
  const commit = repo.commit({ 'app.js': 'code\n', 'config/app.yml': 'defaults\n' });
  const config = tar([{ path: 'config/app.yml', body: 'production' }]);
  writeFileSync(path.join(s.root, 'config.tar'), config);
  s.manifest(`layers:\n  - src: git+file://${repo.bare}#main\n    checksum: ${commit}\n  - src: config.tar\n    checksum: ${sha1(config)}\ndest: ${s.dest}\ncommands:\n${env(s)}`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['app.js', 'config/', 'config/app.yml']);
  assert.equal(readFileSync(path.join(s.dest, 'config/app.yml'), 'utf8'), 'production');
  assert.equal(readFileSync(`${s.out}/checksum`, 'utf8').trim(), `${commit} ${sha1(config)}`);
});

test('git: watch redeploys an unchanged manifest when the branch is pushed to', async (t) => {
  const s = new Scenario(t);
  const repo = new Repo(s.root);
  repo.commit({ VERSION: 'v1' });
  const daemon = await gitDaemon(t, path.join(s.root, 'repos'));
  s.manifest(`src: ${daemon.url('app.git')}#main\ndest: ${s.dest}\n`);
  let pid = 0;
  const run = s.run('', { args: ['watch', `file://${s.root}/manifest.yml`, '--interval=1s', '--jitter=100ms'], onSpawn: (p) => (pid = p), timeoutMs: 120_000 });
  const version = (): string => (existsSync(path.join(s.dest, 'VERSION')) ? readFileSync(path.join(s.dest, 'VERSION'), 'utf8') : '');
  const record = (): { git_commits?: string[] } => {
    const dir = path.join(s.state, 'watch');
    const f = existsSync(dir) ? readdirSync(dir).find((n: string) => n.endsWith('.json')) : undefined;
    return f ? (JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { git_commits?: string[] }) : {};
  };
  await until(() => version() === 'v1' && record().git_commits !== undefined, 'v1 deployed');
  const v2 = repo.commit({ VERSION: 'v2' });
  await until(() => version() === 'v2' && record().git_commits?.[0] === v2, 'v2 deployed after the push', 60_000);
  process.kill(pid, 'SIGTERM');
  const r = await run;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`moved to ${v2}: deploying`));
  assert.equal((r.stderr.match(/deploy succeeded/g) ?? []).length, 2);
  // Restarted, it knows what it deployed (no redeploy), and still follows the branch.
  let again = 0;
  let said = '';
  const rerun = s.run('', { args: ['watch', `file://${s.root}/manifest.yml`, '--interval=1s', '--jitter=100ms'], onSpawn: (p) => (again = p), onStderr: (text) => (said = text), timeoutMs: 120_000 });
  await until(() => /watching /.test(said), 'the restarted watch');
  await sleep(3000);
  assert.doesNotMatch(said, /deploying/);
  const v3 = repo.commit({ VERSION: 'v3' });
  await until(() => version() === 'v3' && record().git_commits?.[0] === v3, 'v3 deployed after a restart', 60_000);
  process.kill(again, 'SIGTERM');
  const r2 = await rerun;
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal((r2.stderr.match(/deploy succeeded/g) ?? []).length, 1);
});

test('git: with --verify-key an unpinned git source is refused; a pinned one deploys', async (t) => {
  const s = new Scenario(t);
  const repo = new Repo(s.root);
  const commit = repo.commit({ VERSION: 'v1' });
  execFileSync('sh', ['-c', 'openssl genpkey -algorithm ed25519 -out key.pem && openssl pkey -in key.pem -pubout -out key.pub'], { cwd: s.root });
  const publish = (yaml: string): void => {
    writeFileSync(path.join(s.root, 'manifest.yml'), yaml);
    execFileSync('openssl', ['pkeyutl', '-sign', '-rawin', '-inkey', 'key.pem', '-in', 'manifest.yml', '-out', 'manifest.yml.sig'], { cwd: s.root });
  };
  const signed = `dest: ${s.dest}\nmanifest_url: ${s.root}/manifest.yml\nserial: 1\n`;
  publish(`src: git+file://${repo.bare}#main\n${signed}`);
  const r = await s.run(`${s.root}/manifest.yml`, { args: ['--verify-key', `${s.root}/key.pub`] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ERROR: deploy failed: refusing git source .* without a checksum: with --verify-key a git source must be pinned/);
  assert.equal(existsSync(s.dest), false);
  const v = await s.run('', { args: ['validate', '--verify-key', `${s.root}/key.pub`, `${s.root}/manifest.yml`] });
  assert.equal(v.code, 1);
  assert.match(v.stdout, /refusing git source .* without a checksum/);
  publish(`src: git+file://${repo.bare}#main\nchecksum: ${commit}\n${signed}`);
  const r2 = await s.run(`${s.root}/manifest.yml`, { args: ['--verify-key', `${s.root}/key.pub`] });
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), 'v1');
});

test('git: credentials in a git URL never reach the log, the error or the state', async (t) => {
  const s = new Scenario(t);
  s.manifest(`src: git+https://deployer:hunter2secret@127.0.0.1:1/org/app.git#main\ndest: ${s.dest}\ncommands:\n  failure: ['echo "$STRETCHER_ERROR $STRETCHER_SRC" > ${s.out}/error']\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /ERROR: deploy failed: cannot fetch from git repository https:\/\/deployer:REDACTED@127\.0\.0\.1:1\/org\/app\.git/);
  assert.doesNotMatch(r.stderr, /hunter2/);
  assert.match(readFileSync(`${s.out}/error`, 'utf8'), /deployer:REDACTED@/);
  assert.doesNotMatch(readFileSync(`${s.out}/error`, 'utf8'), /hunter2/);
  for (const f of readdirSync(path.join(s.state, 'deploys'))) assert.doesNotMatch(readFileSync(path.join(s.state, 'deploys', f), 'utf8'), /hunter2/);
});

test('git: each failure is one clear line, dest untouched', async (t) => {
  const s = new Scenario(t);
  const repo = new Repo(s.root);
  const commit = repo.commit({ 'a/file': 'x' });
  const daemon = await gitDaemon(t, path.join(s.root, 'repos'));
  const cases: [string, string, RegExp][] = [
    ['unknown host', `src: git://nohost.invalid/app.git\n`, /cannot reach git repository git:\/\/nohost\.invalid\/app\.git: unknown host/],
    ['missing repository (daemon)', `src: ${daemon.url('nope.git')}\n`, /git repository git:\/\/127\.0\.0\.1:\d+\/nope\.git does not exist/],
    ['missing repository (file)', `src: git+file://${s.root}/nope.git\n`, /git repository file:\/\/.*\/nope\.git does not exist/],
    ['missing ref', `src: ${daemon.url('app.git')}#nobranch\n`, /ref "nobranch" not found in git repository/],
    ['missing path', `src: git+file://${repo.bare}//nodir\n`, new RegExp(`path "nodir" does not exist in commit ${commit}`)],
    ['path is a file', `src: git+file://${repo.bare}//a/file\n`, /path "a\/file" is not a directory \(a file\)/],
  ];
  for (const [what, src, error] of cases) {
    s.manifest(`${src}dest: ${s.dest}\ncommands:\n${env(s)}`);
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 1, `${what}: ${r.stderr}`);
    const errors = r.stderr.split('\n').filter((l) => /ERROR:/.test(l));
    assert.equal(errors.length, 1, `${what}: ${r.stderr}`);
    assert.match(errors[0] as string, error, what);
    assert.match(errors[0] as string, /ERROR: deploy failed: /);
    assert.equal(existsSync(s.dest), false, what);
    assert.ok(existsSync(`${s.out}/error`), what);
    rmSync(`${s.out}/error`);
  }
  assert.deepEqual(s.leftovers(), []);
});

test('git: a checksum that is not a commit id is a validation error; so is a bad ref', async (t) => {
  const s = new Scenario(t);
  const m = s.manifest(`src: git+https://example.com/org/app.git#main\nchecksum: ${'a'.repeat(32)}\ndest: /srv/app\n`);
  const r = await s.run('', { args: ['validate', m] });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /line 2: checksum "a{32}" of git source git\+https:\/\/example\.com\/org\/app\.git#main is not a commit id/);
  const r2 = await s.run(m);
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /is not a commit id/);
  const bad = s.manifest(`src: git@example.com:org/app.git/sub#--upload-pack=x\ndest: /srv/app\n`, 'bad.yml');
  const r3 = await s.run('', { args: ['validate', bad] });
  assert.equal(r3.code, 1);
  assert.match(r3.stdout, /is not a valid branch, tag or commit name/);
  const ok = s.manifest(`src: git@example.com:org/app.git/sub#main\nchecksum: ${'b'.repeat(40)}\ndest: /srv/app\n`, 'ok.yml');
  const r4 = await s.run('', { args: ['validate', ok] });
  assert.equal(r4.code, 0, r4.stdout);
});

test('git: a corrupt cache is detected and fetched afresh, never deployed from', async (t) => {
  const s = new Scenario(t);
  const repo = new Repo(s.root);
  repo.commit({ VERSION: 'v1' });
  s.manifest(`src: git+file://${repo.bare}\ndest: ${s.dest}\n`);
  assert.equal((await s.run(`${s.root}/manifest.yml`)).code, 0);
  const [cache] = caches(s.state);
  assert.ok(cache);
  // Every object file gone: refs that name nothing.
  rmSync(path.join(cache, 'objects'), { recursive: true });
  repo.commit({ VERSION: 'v2' });
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /git cache of .* is broken .*fetching afresh/);
  assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), 'v2');
  assert.ok(lstatSync(path.join(cache, 'objects')).isDirectory());
});

test('git: a file:// repository owned by another user, with hostile config, is read without running any of it', async (t) => {
  const s = new Scenario(t);
  const repo = new Repo(s.root);
  repo.commit({ VERSION: 'v1' });
  // Everything a repository's own config could try to run, if git honoured it for a fetch from it.
  const hostile: [string, string][] = [
    ['core.fsmonitor', `touch ${s.out}/fsmonitor-ran`],
    ['uploadpack.packObjectsHook', `sh -c 'touch ${s.out}/hook-ran; exec "$@"' x`],
    ['core.sshCommand', `touch ${s.out}/ssh-ran`],
  ];
  for (const [k, v] of hostile) git(repo.bare, 'config', k, v);
  writeFileSync(path.join(repo.bare, 'hooks', 'post-upload-pack'), `#!/bin/sh\ntouch ${s.out}/post-hook-ran\n`, { mode: 0o755 });
  execFileSync('chown', ['-R', '4242:4242', repo.bare]);
  s.manifest(`src: git+file://${repo.bare}\ndest: ${s.dest}\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), 'v1');
  assert.deepEqual(readdirSync(s.out), []);
});

test('git: a SHA-256 repository, pinned and not; the release strategy names the release by the commit', async (t) => {
  const s = new Scenario(t);
  const work = path.join(s.root, 'w256');
  git(s.root, 'init', '-q', '--object-format=sha256', '-b', 'main', work);
  writeFileSync(path.join(work, 'f'), 'x');
  git(work, 'add', 'f');
  git(work, 'commit', '-qm', 'x');
  const commit = git(work, 'rev-parse', 'HEAD');
  assert.equal(commit.length, 64);
  const dest = path.join(path.dirname(s.dest), 'current');
  s.manifest(`src: git+file://${work}#main\ndest: ${dest}\nsync_strategy: release\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(readlinkSync(dest).endsWith(`-${commit.slice(0, 12)}`), readlinkSync(dest));
  const again = await s.run(`${s.root}/manifest.yml`);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /is already current/);
  s.manifest(`src: git+file://${work}#main\nchecksum: ${commit}\ndest: ${s.dest}\n`);
  const pinned = await s.run(`${s.root}/manifest.yml`);
  assert.equal(pinned.code, 0, pinned.stderr);
  assert.equal(readFileSync(path.join(s.dest, 'f'), 'utf8'), 'x');
});

test('git: a commit whose tree holds a .git entry is refused', async (t) => {
  const s = new Scenario(t);
  const repo = new Repo(s.root);
  repo.commit({ ok: 'ok' });
  // A tree git itself would never make from a work tree: .git/config as a tracked file.
  const blob = execFileSync('git', ['hash-object', '-w', '--stdin'], { cwd: repo.work, input: '[core]\n\tfsmonitor = touch /tmp/x\n', encoding: 'utf8' }).trim();
  const inner = execFileSync('git', ['mktree'], { cwd: repo.work, input: `100644 blob ${blob}\tconfig\n`, encoding: 'utf8' }).trim();
  const okBlob = git(repo.work, 'rev-parse', 'HEAD:ok');
  const root = execFileSync('git', ['mktree'], { cwd: repo.work, input: `040000 tree ${inner}\t.git\n100644 blob ${okBlob}\tok\n`, encoding: 'utf8' }).trim();
  const commit = git(repo.work, 'commit-tree', root, '-p', 'HEAD', '-m', 'hostile');
  git(repo.work, 'push', '-q', '-f', 'origin', `${commit}:refs/heads/main`);
  s.manifest(`src: git+file://${repo.bare}\ndest: ${s.dest}\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /ERROR: deploy failed: refusing commit [0-9a-f]{40}: it has an entry "\.git\/config" inside a \.git/);
  assert.equal(existsSync(s.dest), false);
});

test('git: an object damaged in the cache fails the deploy before dest changes, and the next deploy fetches afresh', async (t) => {
  const s = new Scenario(t);
  const repo = new Repo(s.root);
  repo.commit({ VERSION: 'v1', other: 'o' });
  s.manifest(`src: git+file://${repo.bare}\ndest: ${s.dest}\n`);
  assert.equal((await s.run(`${s.root}/manifest.yml`)).code, 0);
  const [cache] = caches(s.state);
  assert.ok(cache);
  // The blob's file, present (so refs still reach it) but no longer zlib data.
  const blob = git(repo.work, 'rev-parse', 'HEAD:VERSION');
  const file = path.join(cache, 'objects', blob.slice(0, 2), blob.slice(2));
  assert.ok(existsSync(file), 'small fetches keep loose objects');
  writeFileSync(file, 'garbage');
  writeFileSync(path.join(s.dest, 'VERSION'), 'changed here');
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /ERROR: deploy failed: git archive failed: .*the git cache is damaged, so it was removed/);
  assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), 'changed here');
  const r2 = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(readFileSync(path.join(s.dest, 'VERSION'), 'utf8'), 'v1');
  assert.deepEqual(s.leftovers(), []);
});

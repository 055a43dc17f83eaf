import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { listTree, Scenario } from '../helpers/scenario.js';
import { tar, type TarEntry } from '../helpers/tar.js';

/** A release scenario: dest is <root>/srv/app/current, releases in <root>/srv/app/releases. */
function releaseScenario(t: import('node:test').TestContext): Scenario & { current: string; releases: string } {
  const s = new Scenario(t) as Scenario & { current: string; releases: string };
  s.current = path.join(path.dirname(s.dest), 'current');
  s.releases = path.join(path.dirname(s.dest), 'releases');
  return s;
}

const HOOKS = (out: string) => `commands:
  pre: ['echo "pre release=$STRETCHER_RELEASE_DIR previous=$STRETCHER_PREVIOUS_RELEASE_DIR" >> ${out}/hooks']
  post: ['echo "post $(cat $STRETCHER_DEST/VERSION)" >> ${out}/hooks']
  failure: ['echo "failure rolled_back=$STRETCHER_ROLLED_BACK now=$(cat $STRETCHER_DEST/VERSION 2>/dev/null)" >> ${out}/hooks']
`;

function version(s: Scenario & { current: string }, v: string, extra = '', entries: TarEntry[] = [{ path: 'VERSION', body: v }]): string {
  const lines = s.archive(tar(entries), `${v}.tar`).replace(`dest: ${s.dest}`, `dest: ${s.current}`);
  return s.manifest(`${lines}sync_strategy: release\n${extra}`, `${v}.yml`);
}

const releases = (dir: string): string[] =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((n) => !n.startsWith('.'))
        .sort()
    : [];
const hooks = (s: Scenario): string[] => readFileSync(`${s.out}/hooks`, 'utf8').trim().split('\n');

test('release: each deploy unpacks into releases/<time>-<checksum12> and switches the dest symlink', async (t) => {
  const s = releaseScenario(t);
  const r1 = await s.run(version(s, 'v1', `dest_mode: 0750\n${HOOKS(s.out)}`));
  assert.equal(r1.code, 0, r1.stderr);
  const [first] = releases(s.releases);
  assert.match(first ?? '', /^\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{12}$/);
  assert.ok(lstatSync(s.current).isSymbolicLink());
  assert.equal(readlinkSync(s.current), `releases/${first}`);
  assert.equal(readFileSync(path.join(s.current, 'VERSION'), 'utf8'), 'v1');
  assert.equal(statSync(path.join(s.releases, first as string)).mode & 0o7777, 0o750);

  const r2 = await s.run(version(s, 'v2', HOOKS(s.out)));
  assert.equal(r2.code, 0, r2.stderr);
  const second = releases(s.releases).find((r) => r !== first) as string;
  assert.equal(readFileSync(path.join(s.current, 'VERSION'), 'utf8'), 'v2');
  assert.deepEqual(hooks(s), [`pre release=${s.releases}/${first} previous=`, 'post v1', `pre release=${s.releases}/${second} previous=${s.releases}/${first}`, 'post v2']);
  const record = JSON.parse(readFileSync(path.join(s.state, 'deploys', readdirSync(path.join(s.state, 'deploys'))[0] as string), 'utf8')) as { release: string };
  assert.equal(record.release, second);
});

test('release: the checksum already current is a no-op unless --force', async (t) => {
  const s = releaseScenario(t);
  const m = version(s, 'v1', HOOKS(s.out));
  assert.equal((await s.run(m)).code, 0);
  const again = await s.run(m);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /release \S+ \(checksum [0-9a-f]{12}\) is already current at \S+current; nothing to do/);
  assert.equal(hooks(s).length, 2, 'no hooks ran the second time');
  assert.equal(releases(s.releases).length, 1);
  const forced = await s.run(m, { args: ['--force'] });
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(hooks(s).length, 4);
  assert.equal(releases(s.releases).length, 2);
});

test('release: a failing post switches dest back before the failure commands run', async (t) => {
  const s = releaseScenario(t);
  assert.equal((await s.run(version(s, 'v1', HOOKS(s.out)))).code, 0);
  const good = readlinkSync(s.current);
  const bad = await s.run(version(s, 'v2', HOOKS(s.out).replace("post: ['echo", "post: ['exit 1', 'echo")));
  assert.equal(bad.code, 1);
  assert.equal(readlinkSync(s.current), good);
  assert.equal(readFileSync(path.join(s.current, 'VERSION'), 'utf8'), 'v1');
  assert.equal(hooks(s).at(-1), 'failure rolled_back=1 now=v1');
  assert.match(bad.stderr, /WARN: post failed: rolled back to release \S+/);
});

test('release: rollback_on_failure: false leaves the new release in place', async (t) => {
  const s = releaseScenario(t);
  assert.equal((await s.run(version(s, 'v1', HOOKS(s.out)))).code, 0);
  const bad = await s.run(version(s, 'v2', `rollback_on_failure: false\n${HOOKS(s.out).replace("post: ['echo", "post: ['exit 1', 'echo")}`));
  assert.equal(bad.code, 1);
  assert.equal(readFileSync(path.join(s.current, 'VERSION'), 'utf8'), 'v2');
  assert.equal(hooks(s).at(-1), 'failure rolled_back= now=v2');
});

test('release: a failing post on the first deploy removes the symlink it made', async (t) => {
  const s = releaseScenario(t);
  const r = await s.run(version(s, 'v1', `commands:\n  post: ["false"]\n`));
  assert.equal(r.code, 1);
  assert.equal(existsSync(s.current), false);
  assert.match(r.stderr, /rolled back to no release/);
});

test('release: a first deploy that fails before the switch leaves nothing, not even an empty releases/', async (t) => {
  const s = releaseScenario(t);
  const srv = path.dirname(s.current);
  writeFileSync(path.join(s.root, 'bad.yml'), readFileSync(version(s, 'v1'), 'utf8').replace(/checksum: \w+/, `checksum: ${'0'.repeat(40)}`));
  const r = await s.run(`${s.root}/bad.yml`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /checksum mismatch/);
  assert.deepEqual(readdirSync(srv), []);
  const pre = await s.run(version(s, 'v1', `commands:\n  pre: ["false"]\n`));
  assert.equal(pre.code, 1);
  assert.deepEqual(readdirSync(srv), []);
  // One it did not make stays, with what is in it.
  assert.equal((await s.run(version(s, 'v1'))).code, 0);
  const later = await s.run(`${s.root}/bad.yml`);
  assert.equal(later.code, 1);
  assert.equal(releases(s.releases).length, 1);
  assert.deepEqual(s.leftovers(), []);
});

test('release: keep_releases deletes the oldest, never the current or previous', async (t) => {
  const s = releaseScenario(t);
  for (const v of ['v1', 'v2', 'v3', 'v4']) {
    const r = await s.run(version(s, v, 'keep_releases: 2\n'));
    assert.equal(r.code, 0, r.stderr);
  }
  const left = releases(s.releases);
  assert.equal(left.length, 2);
  assert.equal(readFileSync(path.join(s.current, 'VERSION'), 'utf8'), 'v4');
  assert.deepEqual(
    left.map((id) => readFileSync(path.join(s.releases, id, 'VERSION'), 'utf8')),
    ['v3', 'v4'],
  );
  assert.deepEqual(readdirSync(s.releases).filter((n) => n.startsWith('.') && n !== '.switches.json').length, 2, 'sidecars of removed releases go too');
});

test('release: excludes apply (excluded entries are not unpacked)', async (t) => {
  const s = releaseScenario(t);
  const r = await s.run(
    version(s, 'v1', 'excludes: ["*.log", "/tmp/"]\n', [{ path: 'VERSION', body: 'v1' }, { path: 'debug.log' }, { path: 'tmp/', type: 'dir' }, { path: 'tmp/x' }, { path: 'lib/tmp/keep' }]),
  );
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(path.join(s.current, '/')), ['VERSION', 'lib/', 'lib/tmp/', 'lib/tmp/keep']);
});

test('release: a dest that is a real directory is refused with migration advice, and left alone', async (t) => {
  const s = releaseScenario(t);
  mkdirSync(s.current, { recursive: true });
  writeFileSync(path.join(s.current, 'precious'), 'x');
  const r = await s.run(version(s, 'v1'));
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /dest \S+current is a real directory; the release strategy needs dest to be a symlink it can switch, and never deletes a directory\. To migrate: move it away \(mv \S+current \S+current\.before-releases\) and deploy again/,
  );
  assert.deepEqual(listTree(s.current), ['precious']);
  assert.deepEqual(s.leftovers(), []);
});

test('releases and rollback: list with marks, roll back to the previous or a named release, recorded in state', async (t) => {
  const s = releaseScenario(t);
  for (const v of ['v1', 'v2', 'v3']) assert.equal((await s.run(version(s, v))).code, 0);
  const [r1, r2, r3] = releases(s.releases) as [string, string, string];
  const list = await s.run('', { args: ['releases', '--dest', s.current] });
  assert.equal(list.code, 0, list.stderr);
  const lines = list.stdout.trim().split('\n');
  assert.match(lines[0] as string, new RegExp(`^current  ${r3}  [0-9a-f]{12}  \\S+Z  file://`));
  assert.match(lines[1] as string, new RegExp(`^previous ${r2}  `));
  assert.match(lines[2] as string, new RegExp(`^ {9}${r1}  `));
  const json = JSON.parse((await s.run('', { args: ['releases', '--dest', s.current, '--json'] })).stdout) as { current: string; previous: string; releases: { id: string; checksum: string }[] };
  assert.equal(json.current, r3);
  assert.equal(json.previous, r2);
  assert.match(json.releases[0]?.checksum ?? '', /^[0-9a-f]{40}$/);

  const back = await s.run('', { args: ['rollback', '--dest', s.current] });
  assert.equal(back.code, 0, back.stderr);
  assert.equal(readFileSync(path.join(s.current, 'VERSION'), 'utf8'), 'v2');
  const to = await s.run('', { args: ['rollback', '--dest', s.current, '--to', r3] });
  assert.equal(to.code, 0, to.stderr);
  assert.equal(readFileSync(path.join(s.current, 'VERSION'), 'utf8'), 'v3');
  const status = JSON.parse((await s.run('', { args: ['status', '--json', '--dest', s.current] })).stdout) as { result: string; release: string };
  assert.equal(status.result, 'rollback');
  assert.equal(status.release, r3);
  const missing = await s.run('', { args: ['rollback', '--dest', s.current, '--to', 'nope'] });
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /release nope does not exist/);
  for (const bogus of ['..', '.', `.${r2}.json`, '.switches.json', `../releases/${r2}`]) {
    const r = await s.run('', { args: ['rollback', '--dest', s.current, '--to', bogus] });
    assert.equal(r.code, 1, bogus);
    assert.match(r.stderr, /does not exist in .*stretcher releases --dest/, bogus);
    assert.equal(readFileSync(path.join(s.current, 'VERSION'), 'utf8'), 'v3', bogus);
  }
  const usage = await s.run('', { args: ['rollback'] });
  assert.equal(usage.code, 2);
});

test('release: a reader resolving dest/data in a loop during 50 deploys never sees it missing or mixed', async (t) => {
  const s = releaseScenario(t);
  const stop = path.join(s.out, 'stop');
  const body = (v: number) => `version ${v}\n`.repeat(2000);
  const m = (v: number) => version(s, `v${v}`, 'keep_releases: 3\n', [{ path: 'data', body: body(v) }]);
  assert.equal((await s.run(m(0))).code, 0);
  const reader = spawn(process.execPath, [fileURLToPath(new URL('../helpers/reader.mjs', import.meta.url)), s.current, stop], { stdio: ['ignore', 'pipe', 'inherit'] });
  let report = '';
  reader.stdout.on('data', (d: Buffer) => (report += d.toString()));
  const done = new Promise((resolve) => reader.on('close', resolve));
  t.after(() => reader.kill());
  for (let v = 1; v <= 50; v++) {
    const r = await s.run(m(v));
    assert.equal(r.code, 0, r.stderr);
  }
  writeFileSync(stop, '');
  await done;
  const result = JSON.parse(report) as { reads: number; missing: number; mixed: number; versions: number };
  assert.equal(result.missing, 0, JSON.stringify(result));
  assert.equal(result.mixed, 0, JSON.stringify(result));
  assert.ok(result.versions >= 10, `the reader saw the versions change: ${JSON.stringify(result)}`);
  assert.equal(releases(s.releases).length, 3);
});

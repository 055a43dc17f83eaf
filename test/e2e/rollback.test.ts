import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Scenario } from '../helpers/scenario.js';
import { tar } from '../helpers/tar.js';

type ReleaseScenario = Scenario & { current: string; releases: string };

function releaseScenario(t: import('node:test').TestContext): ReleaseScenario {
  const s = new Scenario(t) as ReleaseScenario;
  s.current = path.join(path.dirname(s.dest), 'current');
  s.releases = path.join(path.dirname(s.dest), 'releases');
  return s;
}

/** Each version's own hooks say which version's manifest they came from. */
function version(s: ReleaseScenario, v: string, extra = '', commands?: string): string {
  const lines = s.archive(tar([{ path: 'VERSION', body: v }]), `${v}.tar`).replace(`dest: ${s.dest}`, `dest: ${s.current}`);
  const hooks =
    commands ??
    `commands:
  post: ['echo "${v}-post rollback=$STRETCHER_ROLLBACK dir=$STRETCHER_RELEASE_DIR now=$(cat $STRETCHER_DEST/VERSION)" >> ${s.out}/hooks']
  success: ['cat > ${s.out}/success-${v}.log; echo "${v}-success rollback=$STRETCHER_ROLLBACK" >> ${s.out}/hooks']
  failure: ['echo "${v}-failure" >> ${s.out}/hooks']
`;
  return s.manifest(`${lines}sync_strategy: release\n${extra}${hooks}`, `${v}.yml`);
}

const live = (s: ReleaseScenario): string => readFileSync(path.join(s.current, 'VERSION'), 'utf8');
const releaseIds = (s: ReleaseScenario): string[] =>
  existsSync(s.releases)
    ? readdirSync(s.releases)
        .filter((n) => !n.startsWith('.'))
        .sort()
    : [];
const versions = (s: ReleaseScenario): string[] => releaseIds(s).map((id) => readFileSync(path.join(s.releases, id, 'VERSION'), 'utf8'));
const hookLines = (s: ReleaseScenario): string[] => (existsSync(`${s.out}/hooks`) ? readFileSync(`${s.out}/hooks`, 'utf8').trim().split('\n') : []);

async function deploy(s: ReleaseScenario, v: string, extra = '', commands?: string): Promise<void> {
  const r = await s.run(version(s, v, extra, commands));
  assert.equal(r.code, 0, r.stderr);
}

test('rollback goes to the release that was live before the current one, not the next-older directory', async (t) => {
  const s = releaseScenario(t);
  await deploy(s, 'v1');
  await deploy(s, 'v2');
  assert.equal((await s.run('', { args: ['rollback', '--dest', s.current] })).code, 0);
  assert.equal(live(s), 'v1');
  // v2 again: a new release directory, newer than the first v2's.
  s.manifest(readFileSync(`${s.root}/v2.yml`, 'utf8'), 'v2-again.yml');
  assert.equal((await s.run(`${s.root}/v2-again.yml`)).code, 0);
  assert.equal(live(s), 'v2');
  const list = JSON.parse((await s.run('', { args: ['releases', '--dest', s.current, '--json'] })).stdout) as { previous: string };
  assert.equal(readFileSync(path.join(s.releases, list.previous, 'VERSION'), 'utf8'), 'v1', 'previous is v1, live before the current v2');
  const r = await s.run('', { args: ['rollback', '--dest', s.current, '--no-hooks'] });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(live(s), 'v1', 'the app leaves v2');
});

test('rollback --to the current release changes nothing and exits non-zero', async (t) => {
  const s = releaseScenario(t);
  await deploy(s, 'v1');
  await deploy(s, 'v2');
  const [, r2] = releaseIds(s) as [string, string];
  const before = hookLines(s).length;
  const r = await s.run('', { args: ['rollback', '--dest', s.current, '--to', r2] });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`rollback failed: release ${r2} is already current at ${s.current}; nothing to do`));
  assert.equal(live(s), 'v2');
  assert.equal(hookLines(s).length, before, 'no hooks ran');
});

test('a second rollback says how to go further instead of undoing the first', async (t) => {
  const s = releaseScenario(t);
  for (const v of ['v1', 'v2', 'v3']) await deploy(s, v);
  const [r1, , r3] = releaseIds(s) as [string, string, string];
  assert.equal((await s.run('', { args: ['rollback', '--dest', s.current, '--no-hooks'] })).code, 0);
  assert.equal(live(s), 'v2');
  const again = await s.run('', { args: ['rollback', '--dest', s.current] });
  assert.equal(again.code, 1, again.stderr);
  assert.match(again.stderr, /already rolled back to \S+ \(from \S+\).*--to ID \(stretcher releases --dest \S+ lists them\); to undo it: stretcher rollback --dest \S+ --to \S+/);
  assert.ok(again.stderr.includes(`--to ${r3}`), 'the undo names the release rolled back from');
  assert.equal(live(s), 'v2', 'dest unchanged');
  const further = await s.run('', { args: ['rollback', '--dest', s.current, '--to', r1, '--no-hooks'] });
  assert.equal(further.code, 0, further.stderr);
  assert.equal(live(s), 'v1');
});

test("rollback runs the target release's recorded post and success commands, with STRETCHER_ROLLBACK=1; --no-hooks skips them", async (t) => {
  const s = releaseScenario(t);
  await deploy(s, 'v1');
  await deploy(s, 'v2');
  const [r1] = releaseIds(s) as [string];
  const before = hookLines(s).length;
  const r = await s.run('', { args: ['rollback', '--dest', s.current] });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(hookLines(s).slice(before), [`v1-post rollback=1 dir=${path.join(s.releases, r1)} now=v1`, 'v1-success rollback=1']);
  assert.match(readFileSync(`${s.out}/success-v1.log`, 'utf8'), /rolled \S+ back to release/, 'success got the log on stdin');
  // The commands live beside the release, readable by root alone.
  assert.equal(statSync(path.join(s.releases, `.${r1}.json`)).mode & 0o777, 0o600);

  const n = hookLines(s).length;
  const quiet = await s.run('', { args: ['rollback', '--dest', s.current, '--to', (releaseIds(s) as string[])[1] as string, '--no-hooks'] });
  assert.equal(quiet.code, 0, quiet.stderr);
  assert.equal(live(s), 'v2');
  assert.equal(hookLines(s).length, n, '--no-hooks ran nothing');
});

test("a failing post during a rollback runs that manifest's failure commands and exits 1", async (t) => {
  const s = releaseScenario(t);
  await deploy(
    s,
    'v1',
    '',
    `commands:
  post: ['if [ "$STRETCHER_ROLLBACK" = 1 ]; then echo "restart failed" >&2; exit 4; fi']
  failure: ['echo "v1-failure error=$STRETCHER_ERROR" >> ${s.out}/hooks; cat > ${s.out}/failure.log']
`,
  );
  await deploy(s, 'v2');
  const r = await s.run('', { args: ['rollback', '--dest', s.current] });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /rollback failed: post command failed: .* exited with status 4/);
  assert.match(hookLines(s).at(-1) as string, /^v1-failure error=post command failed: .*exited with status 4/);
  assert.match(readFileSync(`${s.out}/failure.log`, 'utf8'), /restart failed/);
  assert.equal(live(s), 'v1', 'dest stays on the target');
  const status = JSON.parse((await s.run('', { args: ['status', '--json', '--dest', s.current] })).stdout) as { result: string; error_code: string };
  assert.equal(status.result, 'failure');
  assert.equal(status.error_code, 'COMMAND_FAILED');
});

test('retention runs only after post succeeded: a failed release removes no good one, and is itself removed first', async (t) => {
  const s = releaseScenario(t);
  await deploy(s, 'v1', 'keep_releases: 2\n');
  await deploy(s, 'v2', 'keep_releases: 2\n');
  const bad = await s.run(version(s, 'v3', 'keep_releases: 2\n', 'commands:\n  post: ["exit 1"]\n'));
  assert.equal(bad.code, 1);
  assert.equal(live(s), 'v2', 'rolled back');
  assert.deepEqual(versions(s), ['v1', 'v2', 'v3'], 'v3 failed: nothing was removed for it');
  await deploy(s, 'v4', 'keep_releases: 2\n');
  assert.deepEqual(versions(s), ['v2', 'v4'], 'the failed v3 went first and did not count; then the oldest good one');
});

test('retention never removes the release that was live before the current one, even when it is old', async (t) => {
  const s = releaseScenario(t);
  await deploy(s, 'v1', 'keep_releases: 1\n');
  await deploy(s, 'v2', 'keep_releases: 1\n');
  assert.equal((await s.run('', { args: ['rollback', '--dest', s.current, '--no-hooks'] })).code, 0);
  await deploy(s, 'v3', 'keep_releases: 1\n');
  // v1 was live before v3; v2 was not, and is beyond keep_releases.
  assert.deepEqual(versions(s), ['v1', 'v3']);
  assert.equal((await s.run('', { args: ['rollback', '--dest', s.current, '--no-hooks'] })).code, 0);
  assert.equal(live(s), 'v1');
});

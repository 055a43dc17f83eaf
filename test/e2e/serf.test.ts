import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cleanEnv, STRETCHER_SHELL } from '../helpers/cli.js';
import { Scenario } from '../helpers/scenario.js';
import { type Agent, formCluster, serf, startAgent } from '../helpers/serf.js';
import { until, untilLine } from '../helpers/wait.js';
import { sha1, tar } from '../helpers/tar.js';

test('serf: three real agents each deploy a user event into their own dest; a catch-all handler ignores member-join', async (t) => {
  const s = new Scenario(t);
  const archive = tar([{ path: 'index.html', body: 'v2' }]);
  const nodes = path.join(s.root, 'nodes');
  for (const n of ['a', 'b', 'c', 'd']) mkdirSync(path.join(nodes, n), { recursive: true });
  s.archive(archive);
  s.manifest(`src: app.tar
checksum: ${sha1(archive)}
dest: ${nodes}/{{ must_env "SERF_SELF_NAME" }}/app
commands:
  post:
    - echo "$SERF_USER_EVENT $SERF_SELF_NAME" > ${nodes}/$SERF_SELF_NAME/seen
`);
  const stretcher = STRETCHER_SHELL;
  const agents = [];
  for (const name of ['a', 'b', 'c']) {
    const env = cleanEnv({ TMPDIR: s.tmp, STRETCHER_STATE_DIR: path.join(s.state, name) });
    agents.push(await startAgent(t, name, [`user:deploy=${stretcher} >> ${s.out}/${name}.log 2>&1`], env, s.out));
  }
  // A catch-all handler (no event filter) gets membership events too; record each event's exit status.
  const catchAll = `${stretcher} >> ${s.out}/d.log 2>&1; echo "$SERF_EVENT:$?" >> ${s.out}/d.exits`;
  agents.push(await startAgent(t, 'd', [catchAll], cleanEnv({ TMPDIR: s.tmp, STRETCHER_STATE_DIR: path.join(s.state, 'd') }), s.out));

  const a = agents[0] as Agent;
  await formCluster(agents);
  await until(() => existsSync(`${s.out}/d.exits`) && readFileSync(`${s.out}/d.exits`, 'utf8').includes('member-join'), 'member-join at d');

  await serf('event', `-rpc-addr=${a.rpc}`, '-coalesce=false', 'deploy', `file://${s.root}/manifest.yml`);
  for (const n of ['a', 'b', 'c', 'd']) {
    // User events are gossiped over UDP, best effort: under load a lost message is made good by the next
    // push/pull sync, which carries recent user events (every 30 s with -profile=lan), so allow for two.
    const seen = await untilLine(path.join(nodes, n, 'seen'), `the deploy on node ${n}`, 75_000).catch((err: Error) => {
      const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '(none)');
      throw new Error(`${err.message}\nhandler log:\n${read(`${s.out}/${n}.log`)}\nagent log:\n${read(`${s.out}/serf-${n}.log`).slice(-3000)}`);
    });
    assert.equal(readFileSync(path.join(nodes, n, 'app', 'index.html'), 'utf8'), 'v2', n);
    assert.equal(seen, `deploy ${n}\n`);
  }
  await until(() => readFileSync(`${s.out}/d.exits`, 'utf8').includes('user:'), 'the user event at d', 75_000);
  const exits = readFileSync(`${s.out}/d.exits`, 'utf8').trim().split('\n');
  assert.ok(exits.includes('member-join:0'), exits.join(','));
  assert.ok(exits.includes('user:0'), exits.join(','));
  assert.deepEqual(
    exits.filter((e) => !e.endsWith(':0')),
    [],
    'every event handled with exit 0',
  );
  assert.match(readFileSync(`${s.out}/d.log`, 'utf8'), /ignoring serf member-join event/);
  assert.match(readFileSync(`${s.out}/a.log`, 'utf8'), /deploy requested by serf event "deploy"/);
});

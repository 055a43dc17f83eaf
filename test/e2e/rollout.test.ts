import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { CLI, cleanEnv, runStretcher, type RunResult } from '../helpers/cli.js';
import { Scenario } from '../helpers/scenario.js';
import { type Agent, formCluster, startAgent } from '../helpers/serf.js';
import { sha1, tar } from '../helpers/tar.js';
import { until } from '../helpers/wait.js';

const NODES = ['a', 'b', 'c', 'd'];

interface Fleet {
  s: Scenario;
  agents: Agent[];
  /** Where each node deploys: <root>/nodes/<name>/current (release strategy). */
  nodes: string;
  /** Runs stretcher on the operator's side, against agent a. */
  stretcher(...args: string[]): Promise<RunResult>;
}

/**
 * Four real serf agents on 127.0.0.1, each with its own state directory and dest, and stretcher as its
 * query handler through a wrapper that records which queries reached the node. Stopped by PID at the end.
 */
async function startFleet(t: TestContext): Promise<Fleet> {
  const s = new Scenario(t);
  const nodes = path.join(s.root, 'nodes');
  const agents: Agent[] = [];
  for (const name of NODES) {
    mkdirSync(path.join(nodes, name), { recursive: true });
    const wrapper = path.join(s.root, `handler-${name}.sh`);
    writeFileSync(wrapper, `#!/bin/sh\necho "$SERF_QUERY_NAME" >> ${s.out}/${name}.queries\nexec ${process.execPath} ${CLI} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const env = cleanEnv({ TMPDIR: s.tmp, STRETCHER_STATE_DIR: path.join(s.state, name) });
    agents.push(await startAgent(t, name, [`query:stretcher-deploy,query:stretcher-status=${wrapper}`], env, s.out));
  }
  await formCluster(agents);
  const rpc = (agents[0] as Agent).rpc;
  return {
    s,
    agents,
    nodes,
    stretcher: (...args) => runStretcher({ args: [...args, '--rpc-addr', rpc], env: s.env(), timeoutMs: 180_000 }),
  };
}

/** A release-strategy manifest of version v into each node's own dest. */
function manifest(f: Fleet, v: string, extra = ''): { url: string; checksum: string } {
  const archive = tar([{ path: 'VERSION', body: v }]);
  writeFileSync(path.join(f.s.root, `${v}.tar`), archive);
  f.s.manifest(
    `src: ${v}.tar
checksum: ${sha1(archive)}
dest: ${f.nodes}/{{ must_env "SERF_SELF_NAME" }}/current
sync_strategy: release
${extra}`,
    `${v}.yml`,
  );
  return { url: `file://${f.s.root}/${v}.yml`, checksum: sha1(archive) };
}

const version = (f: Fleet, node: string): string => readFileSync(path.join(f.nodes, node, 'current', 'VERSION'), 'utf8');
const queries = (f: Fleet, node: string): string[] => (existsSync(`${f.s.out}/${node}.queries`) ? readFileSync(`${f.s.out}/${node}.queries`, 'utf8').trim().split('\n') : []);

interface RolloutJson {
  nodes: { name: string; result: string; error?: string; checksum?: string; release?: string }[];
  stopped: boolean;
}
interface FleetJson {
  nodes: { name: string; answered: boolean; deploys?: { dest: string; result: string; checksum?: string; release?: string; time: string }[] }[];
}

test('rollout: four real agents deploy; a sick second host stops the rollout, is switched back, and the hosts after it are never asked; fleet shows each build', async (t) => {
  const f = await startFleet(t);
  const v1 = manifest(f, 'v1');
  const r1 = await f.stretcher('rollout', v1.url, '--batch', '3');
  assert.equal(r1.code, 0, r1.stdout + r1.stderr);
  for (const n of NODES) {
    assert.equal(version(f, n), 'v1', n);
    assert.match(r1.stdout, new RegExp(`^${n}: success release \\S+-${v1.checksum.slice(0, 12)} checksum ${v1.checksum.slice(0, 12)}$`, 'm'));
  }
  assert.match(r1.stdout, /rollout succeeded: 4 succeeded, 0 failed\n$/);

  // The second host's health gate fails: canary 1, batch 1 stops there.
  const v2 = manifest(f, 'v2', 'health:\n  command: test "$SERF_SELF_NAME" != b\n  timeout: 1s\n  interval: 0.2\n');
  const r2 = await f.stretcher('rollout', v2.url, '--json');
  assert.equal(r2.code, 1, r2.stdout + r2.stderr);
  const report = JSON.parse(r2.stdout) as RolloutJson;
  assert.equal(report.stopped, true);
  assert.deepEqual(
    report.nodes.map((n) => [n.name, n.result]),
    [
      ['a', 'success'],
      ['b', 'failure'],
      ['c', 'skipped'],
      ['d', 'skipped'],
    ],
  );
  assert.equal(report.nodes[0]?.checksum, v2.checksum);
  assert.match(report.nodes[1]?.error ?? '', /^health check failed: not healthy after 1s \(\d+ tries\); last result: command "test \\"\$SERF_SELF_NAME\\" != b" exited with status 1$/);
  assert.match(report.nodes[1]?.release ?? '', new RegExp(`-${v1.checksum.slice(0, 12)}$`), 'b answers that it is back on v1');
  assert.match(r2.stderr, /^b: failure \(dest on release \S+\): health check failed/m);
  assert.match(r2.stderr, /rollout failed: 1 succeeded, 1 failed, 2 not asked \(stopped: more than 0 failed\)/);
  assert.equal(version(f, 'a'), 'v2');
  assert.equal(version(f, 'b'), 'v1', 'b is back on its old release');
  for (const n of ['c', 'd']) {
    assert.equal(version(f, n), 'v1', n);
    assert.deepEqual(queries(f, n), ['stretcher-deploy'], `${n} was asked only for v1`);
  }

  const fleet = await f.stretcher('fleet', '--json');
  assert.equal(fleet.code, 0, fleet.stderr);
  const view = JSON.parse(fleet.stdout) as FleetJson;
  const build = (name: string) => view.nodes.find((n) => n.name === name)?.deploys?.[0];
  assert.deepEqual(
    view.nodes.map((n) => n.name),
    NODES,
  );
  assert.equal(build('a')?.checksum, v2.checksum);
  assert.equal(build('a')?.result, 'success');
  assert.equal(build('b')?.result, 'failure');
  assert.match(build('b')?.release ?? '', new RegExp(`-${v1.checksum.slice(0, 12)}$`));
  for (const n of ['c', 'd']) assert.equal(build(n)?.checksum, v1.checksum);
  assert.equal(build('c')?.dest, path.join(f.nodes, 'c', 'current'));
  const table = await f.stretcher('fleet');
  assert.equal(table.code, 0);
  assert.match(table.stdout, /^NODE\s+DEST\s+RESULT\s+CHECKSUM\s+RELEASE\s+TIME$/m);
  assert.match(table.stdout, new RegExp(`^a\\s+\\S+/a/current\\s+success\\s+${v2.checksum.slice(0, 12)}\\s+\\S+\\s+\\d{4}-`, 'm'));
  assert.match(table.stdout, new RegExp(`^d\\s+\\S+/d/current\\s+success\\s+${v1.checksum.slice(0, 12)}\\s`, 'm'));

  // --tag filters members as serf's own -tag does: none match, nothing is asked.
  const none = await f.stretcher('rollout', v2.url, '--tag', 'role=web');
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no alive members match --tag role=web/);
});

test('rollout: a member killed mid-deploy counts as a failure and does not hang the rollout; fleet shows it', async (t) => {
  const f = await startFleet(t);
  const sleeper = path.join(f.s.out, 'b.sleep-pid');
  t.after(() => {
    if (existsSync(sleeper)) {
      try {
        process.kill(Number(readFileSync(sleeper, 'utf8')), 'SIGKILL');
      } catch {}
    }
  });
  const v1 = manifest(f, 'v1', `commands:\n  pre: ['if [ "$SERF_SELF_NAME" = b ]; then echo $$ > ${sleeper}.tmp && mv ${sleeper}.tmp ${sleeper} && exec sleep 120; fi']\n`);
  const started = Date.now();
  const running = f.stretcher('rollout', v1.url, '--max-failures', '1', '--timeout', '100s', '--json');
  await until(() => existsSync(sleeper), 'b to be deploying', 60_000);
  const b = f.agents[1] as Agent;
  b.process.kill('SIGKILL');
  const r = await running;
  assert.equal(r.code, 1, r.stderr);
  assert.ok(Date.now() - started < 90_000, 'the rollout did not wait out the per-host timeout');
  const report = JSON.parse(r.stdout) as RolloutJson;
  assert.equal(report.stopped, false);
  assert.deepEqual(
    report.nodes.map((n) => [n.name, n.result]),
    [
      ['a', 'success'],
      ['b', 'failure'],
      ['c', 'success'],
      ['d', 'success'],
    ],
  );
  assert.match(report.nodes[1]?.error ?? '', /^member b is (failed|left|no longer a member): it stopped before answering$/);
  for (const n of ['a', 'c', 'd']) assert.equal(version(f, n), 'v1');

  const fleet = await f.stretcher('fleet');
  assert.equal(fleet.code, 1, 'a member did not answer');
  assert.match(fleet.stdout, /^b\s+\((failed|leaving): no answer\)$/m);
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { STATE } from '../../src/host/paths.js';
import { CLI, cleanEnv, runStretcher } from '../helpers/cli.js';
import { Scenario } from '../helpers/scenario.js';
import { serf, startAgent } from '../helpers/serf.js';
import { until } from '../helpers/wait.js';

interface QueryJson {
  Acks: string[] | null;
  Responses: Record<string, string>;
}

test('serf queries: answers stay within the 1024-byte limit (many dests, a long error), and other queries get none', async (t) => {
  const s = new Scenario(t);
  const node = `web-${'x'.repeat(40)}`;
  const state = path.join(s.state, node);
  mkdirSync(path.join(state, 'deploys'), { recursive: true, mode: 0o700 });
  const checksum = 'ab'.repeat(32);
  for (let i = 0; i < 30; i++) {
    const dest = `/srv/applications/service-number-${String(i).padStart(2, '0')}/current`;
    const record = { dest, time: '2026-11-23T10:15:00.512Z', result: 'success', manifest_url: 'file:///m.yml', checksum, release: `20261123T101500.512Z-${checksum.slice(0, 12)}`, duration_ms: 1 };
    writeFileSync(path.join(state, STATE.deployRecord(dest)), JSON.stringify(record));
  }
  const handler = `${process.execPath} ${CLI}`;
  const agent = await startAgent(t, node, [`query=${handler}`], cleanEnv({ TMPDIR: s.tmp, STRETCHER_STATE_DIR: state }), s.out);

  const fleet = await runStretcher({ args: ['fleet', '--json', '--rpc-addr', agent.rpc], env: s.env() });
  assert.equal(fleet.code, 0, fleet.stderr);
  const view = JSON.parse(fleet.stdout) as { nodes: { name: string; answered: boolean; deploys: { dest: string; checksum: string }[]; truncated: number }[] };
  const [only] = view.nodes;
  assert.equal(only?.answered, true, 'the agent sent the answer: it fit');
  assert.ok((only?.deploys.length ?? 0) >= 3, `${only?.deploys.length} dests fit`);
  assert.equal((only?.deploys.length ?? 0) + (only?.truncated ?? 0), 30);
  assert.equal(only?.deploys[0]?.checksum, checksum.slice(0, 12));
  const table = await runStretcher({ args: ['fleet', '--rpc-addr', agent.rpc], env: s.env() });
  assert.match(table.stdout, new RegExp(`^${node}\\s+\\(${only?.truncated} more dests: the answer is limited to Serf's 1024 bytes\\)$`, 'm'));

  // A deploy whose error is far longer than the limit: the error is cut, the answer arrives.
  s.manifest(`commands:\n  pre: ['false # ${'y'.repeat(3000)}']\n`);
  const out = await serf('query', '-format=json', `-rpc-addr=${agent.rpc}`, `-node=${node}`, '-timeout=10s', 'stretcher-deploy', `file://${s.root}/manifest.yml`);
  const answer = (JSON.parse(out) as QueryJson).Responses[node] ?? '';
  assert.ok(Buffer.byteLength(answer) <= 1024 - 64 - node.length + 1, `${Buffer.byteLength(answer)} bytes`);
  const parsed = JSON.parse(answer) as { result: string; error: string };
  assert.equal(parsed.result, 'failure');
  assert.match(parsed.error, /^pre command failed: "false # y+\.\.\.$/);
  // Only the answer reached the asker: the deploy's log did not go into it.
  assert.equal(answer.trim().split('\n').length, 1);

  const other = JSON.parse(await serf('query', '-format=json', `-rpc-addr=${agent.rpc}`, '-timeout=3s', 'something-else', 'x')) as QueryJson;
  assert.deepEqual(other.Responses, {}, 'a query stretcher does not know gets no answer');
});

test('rollout: SIGTERM stops the query under way (no serf process left behind) and exits 143 with the report', async (t) => {
  const s = new Scenario(t);
  const handler = `${process.execPath} ${CLI}`;
  const agent = await startAgent(t, 'solo', [`query:stretcher-deploy=${handler}`], cleanEnv({ TMPDIR: s.tmp, STRETCHER_STATE_DIR: s.state }), s.out);
  const started = path.join(s.out, 'started');
  s.manifest(`commands:\n  pre: ['touch ${started}; sleep 8']\n`);
  let pid = 0;
  const running = runStretcher({
    args: ['rollout', `file://${s.root}/manifest.yml`, '--rpc-addr', agent.rpc, '--json'],
    env: s.env(),
    onSpawn: (p) => (pid = p),
  });
  await until(() => existsSync(started), 'the deploy to start on the host', 30_000);
  process.kill(pid, 'SIGTERM');
  const r = await running;
  assert.equal(r.code, 143, r.stderr);
  const report = JSON.parse(r.stdout) as { nodes: { name: string; result: string; error: string }[] };
  assert.equal(report.nodes[0]?.result, 'failure');
  assert.match(report.nodes[0]?.error ?? '', /interrupted by SIGTERM before solo answered/);
  const ps = spawnSync('pgrep', ['-f', `serf query -rpc-addr=${agent.rpc}`], { encoding: 'utf8' });
  assert.equal(ps.stdout.trim(), '', 'no serf query process is left running');
});

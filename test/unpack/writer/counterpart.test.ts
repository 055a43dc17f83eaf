import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Counterparts, racilyClean, StagedFile } from '../../../src/unpack/writer/counterpart.js';
import type { FileEntry } from '../../../src/unpack/writer/file.js';
import { tempDir } from '../../helpers/tmp.js';

/** Writing only what changed (writer/counterpart.ts): compared with dest's file, staged from the first byte that differs. */

const euid = process.geteuid?.() ?? 0;
const half = 300 * 1024;

function setUp(t: Parameters<typeof tempDir>[0]): { dest: string; staging: string; counterparts: Counterparts } {
  const root = tempDir(t);
  const dest = path.join(root, 'dest');
  const staging = path.join(root, 'staging');
  mkdirSync(dest, { mode: 0o755 });
  mkdirSync(staging, { mode: 0o700 });
  return { dest, staging, counterparts: new Counterparts({ root: dest, keepOwners: euid === 0, euid }) };
}

function entry(staging: string, rel: string, size: number, mode = 0o644): FileEntry {
  return { rel, abs: path.join(staging, rel), mode, mtime: 1_700_000_000, atime: 1_700_000_000, compare: { size, uid: euid, gid: process.getegid?.() ?? 0, replacing: false } };
}

/** Past the tick in which a file just written could change again unseen (racilyClean). */
const settle = () => sleep(50);

test('a file whose bytes differ after an equal start is staged whole: the equal start copied from dest, the rest from the archive', async (t) => {
  const { dest, staging, counterparts } = setUp(t);
  const old = Buffer.alloc(2 * half, 'a');
  writeFileSync(path.join(dest, 'f'), old);
  await settle();
  const archive = Buffer.concat([Buffer.alloc(half, 'a'), Buffer.alloc(half, 'b')]);
  const file = new StagedFile(entry(staging, 'f', archive.length), counterparts);
  file.write(archive.subarray(0, half));
  assert.equal(existsSync(path.join(staging, 'f')), false, 'nothing staged while equal');
  file.write(archive.subarray(half));
  assert.equal(file.end(), undefined);
  assert.ok(readFileSync(path.join(staging, 'f')).equals(archive));
});

test('a file equal to the end is not staged: it is reported kept, with the identity of dest inode', async (t) => {
  const { dest, staging, counterparts } = setUp(t);
  writeFileSync(path.join(dest, 'f'), 'same bytes');
  await settle();
  const file = new StagedFile(entry(staging, 'f', 10), counterparts);
  file.write(Buffer.from('same '));
  file.write(Buffer.from('bytes'));
  const kept = file.end();
  assert.equal(kept?.rel, 'f');
  assert.equal(kept?.changed, undefined);
  assert.equal(kept?.size, 10);
  assert.equal(existsSync(path.join(staging, 'f')), false);
});

test('dest file changing while it is compared: nothing is staged from it, and it is reported changed', async (t) => {
  const { dest, staging, counterparts } = setUp(t);
  writeFileSync(path.join(dest, 'f'), Buffer.alloc(2 * half, 'a'));
  await settle();
  const file = new StagedFile(entry(staging, 'f', 2 * half), counterparts);
  file.write(Buffer.alloc(half, 'a'));
  // The application writes the file in place between two pieces of the archive's.
  writeFileSync(path.join(dest, 'f'), Buffer.alloc(2 * half, 'c'));
  file.write(Buffer.alloc(half, 'b'));
  const kept = file.end();
  assert.equal(kept?.changed, true);
  assert.equal(existsSync(path.join(staging, 'f')), false);
});

test('dest files the merge could not keep in place are never compared: another size, other names, a directory another user can write', async (t) => {
  const { dest, staging, counterparts } = setUp(t);
  writeFileSync(path.join(dest, 'short'), 'abc');
  writeFileSync(path.join(dest, 'linked'), 'same');
  linkSync(path.join(dest, 'linked'), path.join(dest, 'other-name'));
  mkdirSync(path.join(dest, 'open'));
  chmodSync(path.join(dest, 'open'), 0o777);
  writeFileSync(path.join(dest, 'open', 'same'), 'same');
  await settle();
  const cases: [string, number, number][] = [
    ['short', 4, 0o644],
    // a mode change on an inode with two names: replaced, not chmodded in place
    ['linked', 4, 0o755],
    ['open/same', 4, 0o644],
  ];
  for (const [rel, size, mode] of cases) {
    mkdirSync(path.dirname(path.join(staging, rel)), { recursive: true });
    const file = new StagedFile(entry(staging, rel, size, mode), counterparts);
    file.write(Buffer.from('same'.slice(0, size)));
    assert.equal(file.end(), undefined, rel);
    assert.equal(readFileSync(path.join(staging, rel), 'utf8'), 'same'.slice(0, size), `${rel} staged`);
  }
});

test('a file changed within a timestamp tick of its comparison is staged, not compared: it could change again unseen', (t) => {
  const { dest, staging, counterparts } = setUp(t);
  writeFileSync(path.join(dest, 'f'), 'same bytes');
  const file = new StagedFile(entry(staging, 'f', 10), counterparts);
  file.write(Buffer.from('same bytes'));
  assert.equal(file.end(), undefined);
  assert.equal(readFileSync(path.join(staging, 'f'), 'utf8'), 'same bytes');
});

test('racilyClean: a tick is 2 s where timestamps are whole seconds, a few ms where they have nanoseconds', () => {
  assert.equal(racilyClean(1_700_000_000_000, 1_700_000_001_500), true, 'whole seconds, 1.5 s later');
  assert.equal(racilyClean(1_700_000_000_000, 1_700_000_002_500), false, 'whole seconds, 2.5 s later');
  assert.equal(racilyClean(1_700_000_000_123.25, 1_700_000_000_133), true, 'nanoseconds, 10 ms later');
  assert.equal(racilyClean(1_700_000_000_123.25, 1_700_000_000_223), false, 'nanoseconds, 100 ms later');
  assert.equal(racilyClean(1_700_000_005_123.5, 1_700_000_000_000), true, 'a ctime in the future');
});

test('only what its directory lists as a regular file is opened to compare, in a directory too large to list too (one lstat each then)', async (t) => {
  const { dest, staging, counterparts } = setUp(t);
  mkdirSync(path.join(dest, 'uploads'));
  mkdirSync(path.join(staging, 'uploads'));
  for (let i = 0; i < 4100; i++) writeFileSync(path.join(dest, 'uploads', `u${i}`), '');
  const writers: ChildProcess[] = [];
  t.after(() => {
    for (const w of writers) w.kill('SIGKILL');
  });
  for (const dir of ['', 'uploads']) {
    writeFileSync(path.join(dest, dir, 'same'), 'same bytes');
    const pipe = path.join(dest, dir, 'pipe');
    execFileSync('mkfifo', [pipe]);
    // An application's writer waiting for a reader: an open to compare would release it.
    writers.push(spawn('sh', ['-c', `echo x > ${JSON.stringify(pipe)}`], { stdio: 'ignore' }));
  }
  await settle();
  for (const dir of ['', 'uploads']) {
    const rel = (name: string) => (dir ? `${dir}/${name}` : name);
    const file = new StagedFile(entry(staging, rel('same'), 10), counterparts);
    file.write(Buffer.from('same bytes'));
    assert.equal(file.end()?.rel, rel('same'), `${rel('same')} compared and kept`);
    const staged = new StagedFile(entry(staging, rel('pipe'), 4), counterparts);
    staged.write(Buffer.from('file'));
    assert.equal(staged.end(), undefined, 'staged, not compared');
  }
  await sleep(200);
  assert.deepEqual(
    writers.map((w) => w.exitCode ?? w.signalCode),
    [null, null],
    'a FIFO was opened to compare: its writer was released',
  );
});

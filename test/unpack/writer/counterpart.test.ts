import assert from 'node:assert/strict';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Counterparts, StagedFile } from '../../../src/unpack/writer/counterpart.js';
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

test('a file whose bytes differ after an equal start is staged whole: the equal start copied from dest, the rest from the archive', (t) => {
  const { dest, staging, counterparts } = setUp(t);
  const old = Buffer.alloc(2 * half, 'a');
  writeFileSync(path.join(dest, 'f'), old);
  const archive = Buffer.concat([Buffer.alloc(half, 'a'), Buffer.alloc(half, 'b')]);
  const file = new StagedFile(entry(staging, 'f', archive.length), counterparts);
  file.write(archive.subarray(0, half));
  assert.equal(existsSync(path.join(staging, 'f')), false, 'nothing staged while equal');
  file.write(archive.subarray(half));
  assert.equal(file.end(), undefined);
  assert.ok(readFileSync(path.join(staging, 'f')).equals(archive));
});

test('a file equal to the end is not staged: it is reported kept, with the identity of dest inode', (t) => {
  const { dest, staging, counterparts } = setUp(t);
  writeFileSync(path.join(dest, 'f'), 'same bytes');
  const file = new StagedFile(entry(staging, 'f', 10), counterparts);
  file.write(Buffer.from('same '));
  file.write(Buffer.from('bytes'));
  const kept = file.end();
  assert.equal(kept?.rel, 'f');
  assert.equal(kept?.changed, undefined);
  assert.equal(kept?.size, 10);
  assert.equal(existsSync(path.join(staging, 'f')), false);
});

test('dest file changing while it is compared: nothing is staged from it, and it is reported changed', (t) => {
  const { dest, staging, counterparts } = setUp(t);
  writeFileSync(path.join(dest, 'f'), Buffer.alloc(2 * half, 'a'));
  const file = new StagedFile(entry(staging, 'f', 2 * half), counterparts);
  file.write(Buffer.alloc(half, 'a'));
  // The application writes the file in place between two pieces of the archive's.
  writeFileSync(path.join(dest, 'f'), Buffer.alloc(2 * half, 'c'));
  file.write(Buffer.alloc(half, 'b'));
  const kept = file.end();
  assert.equal(kept?.changed, true);
  assert.equal(existsSync(path.join(staging, 'f')), false);
});

test('dest files the merge could not keep in place are never compared: another size, other names, a directory another user can write', (t) => {
  const { dest, staging, counterparts } = setUp(t);
  writeFileSync(path.join(dest, 'short'), 'abc');
  writeFileSync(path.join(dest, 'linked'), 'same');
  linkSync(path.join(dest, 'linked'), path.join(dest, 'other-name'));
  mkdirSync(path.join(dest, 'open'));
  chmodSync(path.join(dest, 'open'), 0o777);
  writeFileSync(path.join(dest, 'open', 'same'), 'same');
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

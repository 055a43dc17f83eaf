import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { removeTree } from '../../src/host/remove-tree.js';
import { tempDir } from '../helpers/tmp.js';

/** A tree with nested folders and a symlink to a file outside it, which must survive. */
function tree(root: string): { dir: string; outside: string } {
  const dir = path.join(root, 'tree');
  const outside = path.join(root, 'outside');
  writeFileSync(outside, 'kept');
  for (let i = 0; i < 30; i++) {
    mkdirSync(path.join(dir, `d${i % 3}`, `e${i}`), { recursive: true });
    writeFileSync(path.join(dir, `d${i % 3}`, `e${i}`, 'f'), String(i));
  }
  symlinkSync(outside, path.join(dir, 'd0', 'link'));
  symlinkSync(root, path.join(dir, 'd1', 'dirlink'));
  return { dir, outside };
}

test('removeTree removes the whole tree and nothing a symlink in it points to', async (t) => {
  const root = tempDir(t);
  const { dir, outside } = tree(root);
  await removeTree(dir);
  assert.equal(existsSync(dir), false);
  assert.equal(readFileSync(outside, 'utf8'), 'kept');
});

test('removeTree does not fall back to a walk by path: without rm it fails, naming the tree', async (t) => {
  const root = tempDir(t);
  const { dir, outside } = tree(root);
  const saved = process.env.PATH;
  process.env.PATH = path.join(root, 'no-such-bin');
  t.after(() => (process.env.PATH = saved));
  await assert.rejects(removeTree(dir), (err: Error & { code?: string }) => err.code === 'SYNC_FAILED' && err.message.includes(`cannot remove ${dir}`));
  assert.equal(readFileSync(outside, 'utf8'), 'kept');
});

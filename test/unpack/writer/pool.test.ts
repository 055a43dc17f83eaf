import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../../helpers/tmp.js';

import { WriterPool } from '../../../src/unpack/writer/pool.js';

test("writer pool: growing keeps a path's later entry after its earlier one, and every file lands once", async (t) => {
  const dir = tempDir(t);
  const pool = new WriterPool(3);
  t.after(() => pool.close());
  const entry = (rel: string, mode = 0o644) => ({ rel, abs: path.join(dir, rel), mode, mtime: 1_500_000_000 });
  let id = 0;
  const write = (rel: string, body: string, mode?: number) => {
    pool.add(pool.route(rel), id++, entry(rel, mode), [Buffer.from(body)], Buffer.byteLength(body), true);
  };
  // Enough first versions that thread 0 is still busy with them when the second versions are sent.
  for (let i = 0; i < 3000; i++) write(`f${i}`, `one ${i}`);
  pool.flush(true);
  assert.ok(pool.canGrow);
  await pool.grow();
  // Growing changes where paths are routed, so it waits until everything queued is written.
  assert.equal(readdirSync(dir).length, 3000);
  assert.equal(readFileSync(path.join(dir, 'f2999'), 'utf8'), 'one 2999');
  // After growing, a path may be routed to another thread: its second version must still win.
  for (let i = 0; i < 3000; i++) write(`f${i}`, `two ${i}`, 0o600);
  pool.flush(true);
  await pool.grow();
  assert.equal(pool.canGrow, false);
  for (let i = 3000; i < 3100; i++) write(`f${i}`, `three ${i}`);
  await pool.idle();
  assert.equal(pool.error, undefined);
  assert.equal(readdirSync(dir).length, 3100);
  for (let i = 0; i < 3000; i++) {
    assert.equal(readFileSync(path.join(dir, `f${i}`), 'utf8'), `two ${i}`, `f${i}`);
    assert.equal(statSync(path.join(dir, `f${i}`)).mode & 0o777, 0o600, `f${i}`);
  }
  assert.equal(readFileSync(path.join(dir, 'f3099'), 'utf8'), 'three 3099');
  assert.ok((pool.msPerCreate ?? 0) > 0);
});

test('writer pool: a file whose path is taken by a directory is reported, and the rest is written', async (t) => {
  const dir = tempDir(t);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(path.join(dir, 'taken'));
  const pool = new WriterPool(1);
  t.after(() => pool.close());
  pool.add(0, 0, { rel: 'taken', abs: path.join(dir, 'taken'), mode: 0o644 }, [Buffer.from('x')], 1, true);
  pool.add(0, 1, { rel: 'fine', abs: path.join(dir, 'fine'), mode: 0o644 }, [Buffer.from('y')], 1, true);
  await pool.idle();
  assert.deepEqual(pool.error, { rel: 'taken', message: 'archive entry "taken" is a file where a directory already is', conflict: true });
  assert.equal(readFileSync(path.join(dir, 'fine'), 'utf8'), 'y');
});

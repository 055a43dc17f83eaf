import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { TestServer } from '../helpers/http.js';
import { withTmpfs } from '../helpers/mount.js';
import { listTree, Scenario } from '../helpers/scenario.js';
import { sha1, sha256, tar, tgz } from '../helpers/tar.js';
import { zip } from '../helpers/zip.js';

test('layers: unpacked in order into one tree, a later layer replacing an earlier one; synced by any strategy', async (t) => {
  for (const strategy of ['rsync', 'mv', 'release']) {
    const s = new Scenario(t);
    const srv = await TestServer.start(t);
    const code = tgz([
      { path: 'app.js', body: 'code v7' },
      { path: 'config/app.yml', body: 'defaults' },
      { path: 'config/only-code', body: 'x' },
    ]);
    const config = tar([
      { path: 'config/', type: 'dir', mode: 0o750 },
      { path: 'config/app.yml', body: 'production', mode: 0o600 },
    ]);
    srv.file('/code.tgz', code).file('/layers/config.tar', config);
    const dest = strategy === 'release' ? path.join(path.dirname(s.dest), 'current') : s.dest;
    srv.file(
      '/m.yml',
      `layers:\n  - src: code.tgz\n    checksum: ${sha256(code)}\n  - src: layers/config.tar\n    checksum: sha1:${sha1(config)}\ndest: ${dest}\nsync_strategy: ${strategy}\ncommands:\n  post: ['echo "$STRETCHER_SRC|$STRETCHER_CHECKSUM" > ${s.out}/env']\n`,
    );
    const r = await s.run(srv.url('/m.yml'));
    assert.equal(r.code, 0, `${strategy}: ${r.stderr}`);
    assert.deepEqual(listTree(`${dest}/`), ['app.js', 'config/', 'config/app.yml', 'config/only-code'], strategy);
    assert.equal(readFileSync(path.join(dest, 'config/app.yml'), 'utf8'), 'production');
    assert.equal(statSync(path.join(dest, 'config/app.yml')).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(dest, 'config')).mode & 0o777, 0o750);
    assert.equal(readFileSync(`${s.out}/env`, 'utf8').trim(), `${srv.url('/code.tgz')} ${srv.url('/layers/config.tar')}|${sha256(code)} ${sha1(config)}`);
    assert.match(r.stderr, /merged 2 layers/);
    assert.deepEqual(s.leftovers(), []);
  }
});

test('layers: src and layers together is a validation error; a bad layer checksum names the layer', async (t) => {
  const s = new Scenario(t);
  const both = s.manifest(`src: a.tgz\nchecksum: ${'0'.repeat(40)}\nlayers:\n  - src: b.tgz\n    checksum: ${'0'.repeat(40)}\ndest: /srv/app\n`);
  const r = await s.run('', { args: ['validate', both] });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /src and layers cannot both be given/);
  const bad = s.manifest(`layers:\n  - src: b.tgz\n    checksum: abc\ndest: /srv/app\n`, 'bad.yml');
  const r2 = await s.run('', { args: ['validate', bad] });
  assert.match(r2.stdout, /line 3: layers\[0\]: checksum has 3 hex digits/);
});

test('layers: a wrong checksum on any layer changes nothing', async (t) => {
  const s = new Scenario(t);
  mkdirSync(s.dest);
  writeFileSync(path.join(s.dest, 'v1'), 'v1');
  const a = tar([{ path: 'a' }]);
  writeFileSync(path.join(s.root, 'a.tar'), a);
  s.manifest(`layers:\n  - src: a.tar\n    checksum: ${sha1(a)}\n  - src: a.tar\n    checksum: ${'1'.repeat(40)}\ndest: ${s.dest}\n`);
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /checksum mismatch/);
  assert.deepEqual(listTree(s.dest), ['v1']);
  assert.deepEqual(s.leftovers(), []);
});

test('zip: unpacked with Unix modes, mtimes, and symlinks that stay inside the tree', async (t) => {
  const s = new Scenario(t);
  const when = new Date(2026, 2, 4, 10, 20, 30);
  const archive = zip([
    { path: 'bin/', mode: 0o040750, mtime: when },
    { path: 'bin/run', body: '#!/bin/sh\n', mode: 0o100755, mtime: when },
    { path: 'README', body: 'hello' },
    { path: 'current', symlink: 'bin/run' },
    { path: 'bin/up', symlink: '../README' },
    { path: 'escape', symlink: '../../etc/passwd' },
    { path: 'absolute', symlink: '/etc/passwd' },
  ]);
  s.manifest(s.archive(archive, 'app.zip'));
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listTree(s.dest), ['README', 'bin/', 'bin/run', 'bin/up', 'current']);
  assert.equal(statSync(path.join(s.dest, 'bin/run')).mode & 0o7777, 0o755);
  assert.equal(statSync(path.join(s.dest, 'bin')).mode & 0o7777, 0o750);
  assert.equal(statSync(path.join(s.dest, 'bin/run')).mtime.getTime(), when.getTime());
  assert.equal(readlinkSync(path.join(s.dest, 'current')), 'bin/run');
  assert.equal(readFileSync(path.join(s.dest, 'bin/up'), 'utf8'), 'hello');
  assert.match(r.stderr, /skipping archive symlink "escape" -> "\.\.\/\.\.\/etc\/passwd": it points outside the tree/);
  assert.match(r.stderr, /unpacked 7 entries \(\S+ \S+, zip\)/);
  assert.deepEqual(s.leftovers(), []);
});

test('zip: a hostile zip writes nothing outside the staging tree and changes nothing', async (t) => {
  for (const name of ['../outside/evil', '/abs/evil', 'ok/../../outside/evil']) {
    const s = new Scenario(t);
    mkdirSync(s.dest);
    writeFileSync(path.join(s.dest, 'v1'), 'v1');
    mkdirSync(path.join(s.root, 'outside'));
    s.manifest(
      s.archive(
        zip([
          { path: 'fine', body: 'x' },
          { path: name, body: 'pwned' },
        ]),
        'app.zip',
      ),
    );
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 1, name);
    assert.match(r.stderr, /refusing/, name);
    assert.deepEqual(readdirSync(path.join(s.root, 'outside')), [], name);
    assert.deepEqual(listTree(s.dest), ['v1'], name);
    assert.deepEqual(s.leftovers(), [], name);
  }
});

test('zip: a file where an earlier layer left a symlink replaces the symlink, never writes through it', async (t) => {
  const s = new Scenario(t);
  const outside = path.join(s.root, 'outside');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'target'), 'untouched');
  // Staging sits beside dest (srv/.app.stretcher-new-*), so this reaches <root>/outside/target.
  const first = tar([
    { path: 'cfg', type: 'symlink', linkpath: '../../outside/target' },
    { path: 'sub', type: 'symlink', linkpath: '../../outside' },
    { path: 'dir', type: 'dir' },
  ]);
  const second = zip([
    { path: 'cfg', body: 'from the zip', mode: 0o100640 },
    { path: 'dir', body: 'a file where a directory is' },
  ]);
  writeFileSync(path.join(s.root, 'a.tar'), first);
  writeFileSync(path.join(s.root, 'b.zip'), second);
  const layers = (zipSum: string) => `layers:\n  - src: a.tar\n    checksum: ${sha1(first)}\n  - src: b.zip\n    checksum: ${zipSum}\ndest: ${s.dest}\n`;
  s.manifest(layers(sha1(second)));
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 1, 'the file where a directory is fails the deploy');
  assert.match(r.stderr, /refusing the archive: archive entry "dir" is a file where a directory already is/);
  assert.equal(readFileSync(path.join(outside, 'target'), 'utf8'), 'untouched');

  const good = zip([{ path: 'cfg', body: 'from the zip', mode: 0o100640 }, { path: 'sub/' }, { path: 'sub/inner', body: 'inside' }]);
  writeFileSync(path.join(s.root, 'b.zip'), good);
  s.manifest(layers(sha1(good)));
  const ok = await s.run(`${s.root}/manifest.yml`);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(readFileSync(path.join(outside, 'target'), 'utf8'), 'untouched');
  assert.ok(lstatSync(path.join(s.dest, 'cfg')).isFile());
  assert.equal(readFileSync(path.join(s.dest, 'cfg'), 'utf8'), 'from the zip');
  assert.equal(lstatSync(path.join(s.dest, 'cfg')).mode & 0o7777, 0o640);
  assert.ok(lstatSync(path.join(s.dest, 'sub')).isDirectory(), 'a directory entry replaces the symlink');
  assert.equal(readFileSync(path.join(s.dest, 'sub/inner'), 'utf8'), 'inside');
  assert.deepEqual(readdirSync(outside), ['target']);
  assert.deepEqual(s.leftovers(), []);
});

test('zip: entry-count and size limits apply', async (t) => {
  const s = new Scenario(t);
  s.manifest(s.archive(zip(Array.from({ length: 30 }, (_, i) => ({ path: `f${i}`, body: 'x' }))), 'a.zip'));
  const r = await s.run(`${s.root}/manifest.yml`, { args: ['--max-extract-entries=10'] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /more than 10 entries/);
  s.manifest(s.archive(zip([{ path: 'big', body: Buffer.alloc(3_000_000) }]), 'b.zip'), 'b.yml');
  const r2 = await s.run(`${s.root}/b.yml`, { args: ['--max-extract-size=1MB'] });
  assert.equal(r2.code, 1);
  assert.match(r2.stderr, /unpacks to more than 1\.00 MB/);
  assert.deepEqual(s.leftovers(), []);
});

test('zip: a full disk under the spool fails the deploy cleanly: one line, no retry, failure commands run, nothing left', async (t) => {
  const s = new Scenario(t);
  await withTmpfs(t, s.tmp, 'size=1m,mode=0700', async () => {
    // Incompressible, so that the zip is larger than the 1 MiB TMPDIR its spool goes to.
    const body = randomBytes(3 << 20);
    s.manifest(`${s.archive(zip([{ path: 'big.bin', body }]), 'a.zip')}commands:\n  failure: ["cat > ${s.out}/failure.log"]\n`);
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 1, r.stderr);
    // The spooling WriteStream's ENOSPC was an unhandled 'error' event: node died with a stack trace.
    assert.match(r.stderr, /ERROR: deploy failed: cannot write the download: ENOSPC/);
    assert.doesNotMatch(r.stderr, /retrying|Unhandled|at .*\(node:/);
    assert.match(readFileSync(path.join(s.out, 'failure.log'), 'utf8'), /cannot write the download: ENOSPC/);
    assert.equal(existsSync(s.dest), false);
    assert.deepEqual(s.leftovers(), []);
  });
});

test('zip: a full disk under staging names the entry it could not write, and leaves nothing', async (t) => {
  const s = new Scenario(t);
  const srv = path.dirname(s.dest);
  await withTmpfs(t, srv, 'size=1m,mode=0755', async () => {
    const body = randomBytes(3 << 20);
    s.manifest(
      `${s.archive(
        zip([
          { path: 'ok.txt', body: 'fits' },
          { path: 'sub/big.bin', body },
        ]),
        'a.zip',
      )}commands:\n  failure: ["cat > ${s.out}/failure.log"]\n`,
    );
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /ERROR: deploy failed: cannot unpack "sub\/big\.bin": ENOSPC: no space left on device/);
    assert.ok(existsSync(path.join(s.out, 'failure.log')));
    assert.deepEqual(readdirSync(srv), []);
    assert.deepEqual(s.leftovers(), []);
  });
});

test('hooks see the previous checksum and manifest URL; empty on the first deploy; failures do not erase them', async (t) => {
  const s = new Scenario(t);
  const hook = `commands:\n  pre: ['echo "[$STRETCHER_PREVIOUS_CHECKSUM][$STRETCHER_PREVIOUS_MANIFEST_URL]" >> ${s.out}/prev']\n`;
  s.manifest(`${s.archive(tar([{ path: 'v1' }]), 'v1.tar')}${hook}`, 'v1.yml');
  const v1sum = sha1(tar([{ path: 'v1' }]));
  assert.equal((await s.run(`${s.root}/v1.yml`)).code, 0);
  s.manifest(`${s.archive(tar([{ path: 'v2' }]), 'v2.tar')}${hook.replace("pre: ['echo", "pre: ['echo")}  post: ["false"]\n`, 'v2.yml');
  assert.equal((await s.run(`${s.root}/v2.yml`)).code, 1);
  s.manifest(`${s.archive(tar([{ path: 'v3' }]), 'v3.tar')}${hook}`, 'v3.yml');
  assert.equal((await s.run(`${s.root}/v3.yml`)).code, 0);
  assert.deepEqual(readFileSync(`${s.out}/prev`, 'utf8').trim().split('\n'), ['[][]', `[${v1sum}][file://${s.root}/v1.yml]`, `[${v1sum}][file://${s.root}/v1.yml]`]);
  assert.ok(lstatSync(s.dest).isDirectory());
});

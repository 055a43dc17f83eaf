import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { TestServer } from '../helpers/http.js';
import { Scenario } from '../helpers/scenario.js';
import { tar } from '../helpers/tar.js';
import { zip } from '../helpers/zip.js';

test('hole 8: a token in a failed command line, or a bare token as a URL user, reaches no log, variable, record or status', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  const token = 'ghp_0123456789abcdefTOKEN';
  const bare = 'bare4token5in6userinfo';
  srv.file(
    '/m.yml',
    `dest: ${s.dest}\ncommands:\n  pre: ["curl -H 'Authorization: {{ must_env "DEPLOY_TOKEN" }}' http://127.0.0.1:1/ || exit 7"]\n  failure: ["env > ${s.out}/failure.env; cat > ${s.out}/failure.stdin"]\n`,
  );
  const url = srv.url('/m.yml').replace('http://', `http://${bare}@`);
  const r = await s.run(url, { env: { DEPLOY_TOKEN: token } });
  assert.equal(r.code, 1);
  const status = await s.run('', { args: ['status', '--json'] });
  const texts = {
    stderr: r.stderr,
    'failure env': readFileSync(`${s.out}/failure.env`, 'utf8'),
    'failure stdin': readFileSync(`${s.out}/failure.stdin`, 'utf8'),
    'state record': readFileSync(path.join(s.state, 'deploys', readdirOne(path.join(s.state, 'deploys'))), 'utf8'),
    status: status.stdout,
  };
  for (const [where, text] of Object.entries(texts)) {
    const scrubbed =
      where === 'failure env'
        ? text
            .split('\n')
            .filter((l) => !l.startsWith('DEPLOY_TOKEN='))
            .join('\n')
        : text;
    assert.doesNotMatch(scrubbed, new RegExp(token), `${where} has the token`);
    assert.doesNotMatch(text, new RegExp(bare), `${where} has the URL's user`);
  }
  assert.match(texts['failure env'], /^STRETCHER_ERROR=pre command failed: "curl -H 'Authorization: REDACTED' /m);
  assert.match(texts['failure env'], /^STRETCHER_MANIFEST_URL=http:\/\/REDACTED@127\.0\.0\.1:\d+\/m\.yml$/m);
  assert.match(texts.status, /"error": "pre command failed: \\"curl -H 'Authorization: REDACTED'/);
});

function readdirOne(dir: string): string {
  return readdirSync(dir)[0] as string;
}

test('hole 9: a template value cannot add commands to a signed manifest', async (t) => {
  const s = new Scenario(t);
  execFileSync('sh', ['-c', 'openssl genpkey -algorithm ed25519 -out key.pem && openssl pkey -in key.pem -pubout -out key.pub'], { cwd: s.root });
  const yaml = `${s.archive(tar([{ path: 'a' }]))}manifest_url: ${s.root}/manifest.yml\nserial: 1\ncommands:\n  post: ["echo deployed to {{ env "APP_ENV" }}"]\n  failure: ["touch ${s.out}/failure-ran"]\n`;
  s.manifest(yaml);
  execFileSync('openssl', ['pkeyutl', '-sign', '-rawin', '-inkey', 'key.pem', '-in', 'manifest.yml', '-out', 'manifest.yml.sig'], { cwd: s.root });
  const ok = await s.run(`${s.root}/manifest.yml`, { args: ['--verify-key', `${s.root}/key.pub`], env: { APP_ENV: 'production' } });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /deployed to production/);
  const evil = `prod"]\n  pre: ["touch ${s.out}/owned`;
  const r = await s.run(`${s.root}/manifest.yml`, { args: ['--verify-key', `${s.root}/key.pub`], env: { APP_ENV: evil } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /line \d+: the value of APP_ENV would change the manifest's structure \(key "pre" was added, at commands\.pre\)/);
  assert.equal(existsSync(`${s.out}/owned`), false, 'the injected command did not run');
});

test('hole 10: dest is judged where it really is: /proc/self/root/etc, /proc/1/root/usr and a symlink to /etc are refused', async (t) => {
  const s = new Scenario(t);
  symlinkSync('/etc', path.join(s.root, 'etc-link'));
  for (const [dest, why] of [
    ['/proc/self/root/etc', 'is in /proc, a kernel filesystem'],
    ['/proc/1/root/usr', 'is in /proc, a kernel filesystem'],
    [path.join(s.root, 'etc-link'), 'resolves to /etc, which is a system directory; refusing to deploy over it'],
  ] as const) {
    s.manifest(`${s.archive(tar([{ path: 'a' }]))}`.replace(`dest: ${s.dest}`, `dest: ${dest}`));
    const r = await s.run(`${s.root}/manifest.yml`);
    assert.equal(r.code, 1, dest);
    assert.match(r.stderr, new RegExp(`dest "?${dest}"? ${why}`), dest);
  }
  assert.ok(lstatSync('/etc/passwd').isFile());
});

test('hole 11: zip symlinks are judged by where they resolve, chains included; setuid and setgid bits are dropped', async (t) => {
  const s = new Scenario(t);
  // a/b -> .. and a/c -> b/.. each look harmless as text; followed, a/c leaves the tree.
  const archive = zip([
    { path: 'a/', mode: 0o40755 },
    { path: 'a/b', symlink: '..' },
    { path: 'a/c', symlink: 'b/..' },
    { path: 'a/passwd', symlink: 'c/etc/passwd' },
    { path: 'a/ok', symlink: 'b/a/real' },
    { path: 'a/real', body: 'inside' },
    { path: 'suid', body: '#!/bin/sh\n', mode: 0o104755 },
    { path: 'sgid-dir/', mode: 0o42775 },
  ]);
  s.manifest(s.archive(archive, 'app.zip'));
  const r = await s.run(`${s.root}/manifest.yml`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /skipping archive symlink "a\/c" -> "b\/\.\.": it points outside the tree/);
  assert.match(r.stderr, /skipping archive symlink "a\/passwd" -> "c\/etc\/passwd": it points outside the tree/);
  assert.equal(existsSync(path.join(s.dest, 'a', 'passwd')), false);
  assert.equal(readlinkSync(path.join(s.dest, 'a', 'b')), '..');
  assert.equal(readFileSync(path.join(s.dest, 'a', 'ok'), 'utf8'), 'inside', 'a chain that stays inside is kept');
  assert.equal(statSync(path.join(s.dest, 'suid')).mode & 0o7777, 0o755);
  assert.equal(statSync(path.join(s.dest, 'sgid-dir')).mode & 0o7777, 0o775);
});

test('hole 12: path options end in an answer promptly: a state directory in /proc, a FIFO as a source or key', async (t) => {
  const s = new Scenario(t);
  s.manifest(s.archive(tar([{ path: 'a' }])));
  const started = Date.now();
  const r = await s.run(`${s.root}/manifest.yml`, { args: ['--state-dir', '/proc/stretcher/state'], env: { STRETCHER_STATE_DIR: '' } });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the state directory \/proc\/stretcher\/state is in \/proc, a kernel filesystem, not storage/);
  const fifo = path.join(s.root, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const viaFifo = await s.run(fifo);
  assert.equal(viaFifo.code, 1);
  assert.match(viaFifo.stderr, /fifo is not a regular file/);
  const key = await s.run(`${s.root}/manifest.yml`, { args: ['--verify-key', '/dev/zero'] });
  assert.equal(key.code, 1);
  assert.match(key.stderr, /verify key \/dev\/zero is not a regular file/);
  assert.ok(Date.now() - started < 30_000, 'sanity bound: each ends at once');
});

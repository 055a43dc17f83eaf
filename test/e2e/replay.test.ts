import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { TestServer } from '../helpers/http.js';
import { listTree, Scenario } from '../helpers/scenario.js';
import { sha1, tar } from '../helpers/tar.js';

/** A signing key pair in s.root, and a function that signs a manifest's text the way the README says. */
function signer(s: Scenario): (yaml: string) => { body: string; sig: Buffer } {
  execFileSync('sh', ['-c', 'openssl genpkey -algorithm ed25519 -out key.pem && openssl pkey -in key.pem -pubout -out key.pub'], { cwd: s.root });
  return (yaml) => {
    const file = path.join(s.root, 'to-sign.yml');
    writeFileSync(file, yaml);
    execFileSync('openssl', ['pkeyutl', '-sign', '-rawin', '-inkey', 'key.pem', '-in', file, '-out', `${file}.sig`], { cwd: s.root });
    return { body: yaml, sig: readFileSync(`${file}.sig`) };
  };
}

test('signed manifests are bound to their URL and serial: a replayed, copied or expired one runs nothing', async (t) => {
  const s = new Scenario(t);
  const srv = await TestServer.start(t);
  const sign = signer(s);
  const v1 = tar([{ path: 'v1' }]);
  const v2 = tar([{ path: 'v2' }]);
  srv.file('/app/v1.tar', v1).file('/app/v2.tar', v2).file('/other/v1.tar', v1);
  const manifest = (version: string, serial: number, url: string, extra = '') =>
    `src: ${version}.tar\nchecksum: ${sha1(version === 'v1' ? v1 : v2)}\ndest: ${s.dest}\nmanifest_url: ${url}\nserial: ${serial}\n${extra}commands:\n  pre: ["echo ${version}-${serial} >> ${s.out}/pre-log"]\n  failure: ["touch ${s.out}/failure-ran"]\n`;
  const publish = (at: string, signed: { body: string; sig: Buffer }) => srv.file(at, signed.body).file(`${at}.sig`, signed.sig);
  const app = srv.url('/app/manifest.yml');
  const deploy = () => s.run(app, { args: ['--verify-key', `${s.root}/key.pub`] });

  // Last month's build, signed then: serial 1.
  const old = sign(manifest('v1', 1, app));
  publish('/app/manifest.yml', old);
  const first = await deploy();
  assert.equal(first.code, 0, first.stderr);
  // This month's: serial 2.
  publish('/app/manifest.yml', sign(manifest('v2', 2, app)));
  assert.equal((await deploy()).code, 0);
  assert.deepEqual(listTree(s.dest), ['v2']);
  // A redeploy of the same serial is fine.
  assert.equal((await deploy()).code, 0);

  const refused: [string, () => void, RegExp][] = [
    ['an older signed manifest replayed at the URL', () => publish('/app/manifest.yml', old), /has serial 1, lower than serial 2 already deployed to \S+: refusing it, as an older manifest replayed/],
    [
      "another app's signed manifest served here",
      () => publish('/app/manifest.yml', sign(manifest('v1', 9, srv.url('/other/manifest.yml')))),
      /is bound to another URL \(manifest_url http:\/\/127\.0\.0\.1:\d+\/other\/manifest\.yml\)/,
    ],
    ['an expired one', () => publish('/app/manifest.yml', sign(manifest('v1', 3, app, 'expires: 2020-01-01T00:00:00Z\n'))), /expired at 2020-01-01T00:00:00\.000Z/],
    [
      'one without manifest_url and serial',
      () => publish('/app/manifest.yml', sign(`src: v1.tar\nchecksum: ${sha1(v1)}\ndest: ${s.dest}\ncommands:\n  failure: ["touch ${s.out}/failure-ran"]\n`)),
      /has no manifest_url and serial/,
    ],
  ];
  for (const [what, setup, expected] of refused) {
    setup();
    const r = await deploy();
    assert.equal(r.code, 1, what);
    assert.match(r.stderr, expected, what);
    assert.deepEqual(listTree(s.dest), ['v2'], `${what}: dest untouched`);
    assert.equal(existsSync(`${s.out}/failure-ran`), false, `${what}: not even its failure commands ran`);
  }
  assert.equal(readFileSync(`${s.out}/pre-log`, 'utf8'), 'v1-1\nv2-2\nv2-2\n', 'pre ran for the legitimate deploys only');
  // Credentials in the URL asked for (a token, a pre-signed query) do not break the binding.
  publish('/app/manifest.yml', sign(manifest('v2', 4, app)));
  const withToken = await s.run(app.replace('http://', 'http://deploy-token-123456@').concat('?X-Amz-Signature=abc&token=xyz'), { args: ['--verify-key', `${s.root}/key.pub`] });
  assert.equal(withToken.code, 0, withToken.stderr);
  assert.doesNotMatch(withToken.stderr, /deploy-token-123456|abc&|xyz/);
});

test('a signed deploy is refused when the state directory cannot record serials', async (t) => {
  const s = new Scenario(t);
  const sign = signer(s);
  const archive = tar([{ path: 'a' }]);
  writeFileSync(path.join(s.root, 'app.tar'), archive);
  const signed = sign(`src: app.tar\nchecksum: ${sha1(archive)}\ndest: ${s.dest}\nmanifest_url: ${s.root}/manifest.yml\nserial: 1\n`);
  writeFileSync(path.join(s.root, 'manifest.yml'), signed.body);
  writeFileSync(path.join(s.root, 'manifest.yml.sig'), signed.sig);
  // A file where the state directory should be: it cannot be made.
  rmSync(s.state, { recursive: true, force: true });
  writeFileSync(s.state, 'not a directory');
  const r = await s.run(`${s.root}/manifest.yml`, { args: ['--verify-key', `${s.root}/key.pub`] });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /cannot check signed manifest \S+ against replays: the state directory cannot record serials/);
  assert.equal(existsSync(s.dest), false);
});

test('validate --verify-key checks the signature and that manifest_url and serial are there', async (t) => {
  const s = new Scenario(t);
  const sign = signer(s);
  const good = sign(`dest: ${s.dest}\nmanifest_url: s3://bucket/app/manifest.yml\nserial: 7\n`);
  writeFileSync(path.join(s.root, 'good.yml'), good.body);
  writeFileSync(path.join(s.root, 'good.yml.sig'), good.sig);
  const bare = sign(`dest: ${s.dest}\n`);
  writeFileSync(path.join(s.root, 'bare.yml'), bare.body);
  writeFileSync(path.join(s.root, 'bare.yml.sig'), bare.sig);
  const ok = await s.run('', { args: ['validate', 'good.yml', '--verify-key', 'key.pub'], cwd: s.root });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const r = await s.run('', { args: ['validate', 'bare.yml', '--verify-key', 'key.pub'], cwd: s.root });
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^bare\.yml: no manifest_url and serial: a signed manifest must name the URL it is deployed from/m);
  writeFileSync(path.join(s.root, 'good.yml'), good.body.replace('serial: 7', 'serial: 8'));
  const tampered = await s.run('', { args: ['validate', 'good.yml', '--verify-key', 'key.pub'], cwd: s.root });
  assert.match(tampered.stdout, /good\.yml: .*does not match its signature/);
});

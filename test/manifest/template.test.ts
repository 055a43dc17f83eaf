import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandTemplate, jsonEscape } from '../../src/manifest/template.js';

const env = { APP: 'web', EMPTY: '', QUOTE: 'a"b<c>&' };

test('env: first set and non-empty variable, else the last argument as written', () => {
  assert.equal(expandTemplate('{{ env "APP" }}', env), 'web');
  assert.equal(expandTemplate('{{ env "EMPTY" "APP" "x" }}', env), 'web');
  assert.equal(expandTemplate('{{ env "NOPE" "EMPTY" "fallback" }}', env), 'fallback');
  assert.equal(expandTemplate('{{env "NOPE"}}', env), 'NOPE');
  assert.equal(expandTemplate('dest: /srv/{{ env `APP` }}/current', env), 'dest: /srv/web/current');
});

test('must_env: the value (even empty); unset is an error naming the variable and line', () => {
  assert.equal(expandTemplate('{{ must_env "APP" }}', env), 'web');
  assert.equal(expandTemplate('{{ must_env "EMPTY" }}', env), '');
  assert.throws(() => expandTemplate('a: 1\nb: {{ must_env "DEPLOY_KEY" }}', env, 'm.yml'), /m\.yml:2: template: must_env: environment variable DEPLOY_KEY is not set/);
});

test('json_escape, pipelines and parentheses', () => {
  assert.equal(expandTemplate('{{ json_escape "a\\"b\\n" }}', env), 'a\\"b\\n');
  assert.equal(expandTemplate('{{ env "QUOTE" | json_escape }}', env), 'a\\"b\\u003cc\\u003e\\u0026');
  assert.equal(expandTemplate('{{ json_escape (env "QUOTE") }}', env), 'a\\"b\\u003cc\\u003e\\u0026');
  assert.equal(jsonEscape('tab\there\u2028'), 'tab\\there\\u2028');
});

test('every other {{ }} is left exactly as written', () => {
  const cmd = `docker inspect -f '{{.State.Running}}' app && echo {{ .Foo }} {{/* c */}} {{ if .X }}{{ end }} {{`;
  assert.equal(expandTemplate(cmd, env), cmd);
  assert.equal(expandTemplate(`{{.Env}} {{ env "APP" }} {{ printf "%s" "x" }}`, env), `{{.Env}} web {{ printf "%s" "x" }}`);
  assert.equal(expandTemplate('{{environment}}', env), '{{environment}}');
});

test('trim markers behave as in Go', () => {
  assert.equal(expandTemplate('a   {{- env "APP" -}}   b', env), 'awebb');
  assert.equal(expandTemplate('a {{-3}} b', env), 'a {{-3}} b');
});

test('malformed calls to our functions are errors, not silently kept', () => {
  assert.throws(() => expandTemplate('{{ env "APP" ', env), /expected "}}"/);
  assert.throws(() => expandTemplate('{{ env "APP }}', env), /unterminated string/);
  assert.throws(() => expandTemplate('{{ env }}', env), /at least one argument/);
  assert.throws(() => expandTemplate('{{ env "A" | printf }}', env), /"printf" is not supported/);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isGitSource, parseGitSource } from '../../../src/transfer/git/source.js';

test('git sources: repo-deploy spelling and URL forms give the repository, the path inside it and the ref', () => {
  const cases: [string, string, string, string | undefined][] = [
    ['git@github.com:barchart/app.git/config/prod#production', 'git@github.com:barchart/app.git', 'config/prod', 'production'],
    ['git@github.com:barchart/app.git', 'git@github.com:barchart/app.git', '', undefined],
    ['git+https://host/org/app.git//sub/dir#v1.2', 'https://host/org/app.git', 'sub/dir', 'v1.2'],
    ['git+https://host/org/app.git/sub#main', 'https://host/org/app.git', 'sub', 'main'],
    ['git+ssh://git@host:2222/srv/app.git', 'ssh://git@host:2222/srv/app.git', '', undefined],
    ['git+file:///srv/git/app//web', 'file:///srv/git/app', 'web', undefined],
    ['git://127.0.0.1:9418/app.git#0123456789abcdef0123456789abcdef01234567', 'git://127.0.0.1:9418/app.git', '', '0123456789abcdef0123456789abcdef01234567'],
  ];
  for (const [text, remote, path, ref] of cases) {
    assert.ok(isGitSource(text), text);
    const g = parseGitSource(text);
    assert.deepEqual([g.remote, g.path, g.ref], [remote, path, ref], text);
  }
  for (const text of ['https://host/app.tar.gz', 's3://b/k', 'file:///x.tar', '/srv/app.tar']) assert.equal(isGitSource(text), false, text);
});

test('git sources: options in disguise, paths leaving the repository and bad refs are refused; credentials are not shown', () => {
  for (const text of [
    'git@-oProxyCommand=touch_x:app.git',
    'git+ssh://-oProxyCommand=x/app.git',
    'git@host:app.git#--upload-pack=touch',
    'git@host:app.git/../etc',
    'git+file:///srv/app.git//.git/hooks',
    'git@host:app.git#a..b',
    'git+https://host/app.git?x=1',
  ]) {
    assert.throws(() => parseGitSource(text), /git source|not a/, text);
  }
  const g = parseGitSource('git+https://user:s3cret@host/app.git#main');
  assert.equal(g.remote, 'https://user:s3cret@host/app.git');
  assert.doesNotMatch(`${g} ${g.remoteShown}`, /s3cret/);
});

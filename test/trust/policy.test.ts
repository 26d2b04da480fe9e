import { test } from 'node:test';
import assert from 'node:assert/strict';
import { policyFingerprint, policyFor, repositoryMatches } from '../../src/trust/index.ts';
import { makeCosignKey } from '../helpers/cosign-sign.ts';

test('repository patterns: a plain name matches itself only, * matches any characters including /', () => {
  assert.equal(repositoryMatches('prod/app', 'prod/app'), true);
  assert.equal(repositoryMatches('prod/app', 'prod/app2'), false);
  assert.equal(repositoryMatches('prod/*', 'prod/team/app'), true);
  assert.equal(repositoryMatches('prod/*', 'production/app'), false);
  assert.equal(repositoryMatches('*', 'anything/at/all'), true);
  assert.equal(repositoryMatches('b.test-5000/*', 'b.test-5000/library/app'), true);
  assert.equal(repositoryMatches('b.test-5000/*', 'bxtest-5000/library/app'), false, 'a dot is not a wildcard');
});

test('policyFor: enforce wins, keys pooled, patterns apply; the fingerprint changes with the keys', () => {
  const a = makeCosignKey().publicKeyPem;
  const b = makeCosignKey().publicKeyPem;
  const policies = [
    { name: 'proxy', mode: 'warn' as const, keys: [a], repositories: ['prod/*'] },
    { name: 'group', mode: 'enforce' as const, keys: [b], repositories: ['prod/app'] },
  ];
  const app = policyFor(policies, 'prod/app')!;
  assert.equal(app.mode, 'enforce');
  assert.equal(app.keys.length, 2);
  assert.deepEqual(app.from, ['proxy', 'group']);
  const other = policyFor(policies, 'prod/other')!;
  assert.equal(other.mode, 'warn');
  assert.equal(other.keys.length, 1);
  assert.equal(policyFor(policies, 'dev/app'), undefined);
  assert.notEqual(policyFingerprint(app), policyFingerprint(other));
  assert.equal(policyFingerprint(policyFor([{ name: 'x', mode: 'warn', keys: [b, a] }], 'r')!), policyFingerprint(policyFor([{ name: 'y', mode: 'warn', keys: [a, b] }], 'r')!), 'key order does not matter');
});

import assert from 'node:assert/strict';
import test from 'node:test';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { startTokenIssuer } from '../helpers/token-issuer.ts';
import { UpstreamErrorCode } from '../../src/upstream/index.ts';
import { bigLayer, captureLog, pushFixtures, readAll, rejectsWithCode, sha256, startFakeServer, upstreamClient } from './setup.ts';

test('docker-registry with bearer tokens from the test issuer', async (t) => {
  const issuer = await startTokenIssuer(t, { users: { 'robot$edge+sat1': 's3cret' } });
  const registry = await startDockerRegistry(t, { token: issuer });
  const creds = 'robot$edge+sat1:s3cret';

  await t.test('the issuer works for skopeo push and pull', async () => {
    const fx = await pushFixtures(t, registry, creds, 'edge/probe');
    const raw = await skopeoInspect(`docker://${registry.host}/edge/probe:v1`, { raw: true, creds });
    assert.deepEqual(raw, fx.image.manifest);
    await skopeoCopy(`docker://${registry.host}/edge/probe:v1`, `oci:${fx.layout}:copied`, { srcCreds: creds });
    await assert.rejects(skopeoInspect(`docker://${registry.host}/edge/probe:v1`, { raw: true, creds: 'robot$edge+sat1:wrong' }));
    await assert.rejects(skopeoInspect(`docker://${registry.host}/edge/probe:v1`, { raw: true }));
  });

  const fx = await pushFixtures(t, registry, creds);
  const layer = await bigLayer(fx);

  await t.test('the client gets one token per scope and reuses it', async () => {
    const logs = captureLog();
    const { client } = upstreamClient(t, { url: registry.url, username: 'robot$edge+sat1', password: 's3cret' }, logs.log);
    const before = issuer.requests();
    await client.ping();
    assert.equal((await client.getManifest(fx.repo, 'v1')).digest, fx.image.manifestDigest);
    assert.equal((await client.getManifest(fx.repo, 'multi')).digest, fx.index.indexDigest);
    assert.equal((await client.resolveTag(fx.repo, 'v1')).digest, fx.image.manifestDigest);
    await Promise.all(
      [0, 1000, 2000, 3000].map(async (offset) => {
        const blob = await client.fetchBlob(fx.repo, layer.digest, { offset });
        assert.deepEqual(await readAll(blob.body), layer.bytes.subarray(offset));
      }),
    );
    await client.ping();
    const log = issuer.log().slice(before);
    // One for /v2/ (no scope), one for the repository: concurrent blob fetches share the fetch.
    assert.deepEqual(log.map((r) => r.scopes), [[], [`repository:${fx.repo}:pull`]]);
    assert.ok(log.every((r) => r.user === 'robot$edge+sat1' && r.status === 200));
    const text = logs.text();
    assert.doesNotMatch(text, /s3cret/);
    assert.doesNotMatch(text, /eyJ[\w-]+\.[\w-]+\./, 'no token in the logs');
  });

  await t.test('wrong credentials are UPSTREAM_AUTH from the token realm', async () => {
    const { client } = upstreamClient(t, { url: registry.url, username: 'robot$edge+sat1', password: 'wrong' });
    const err = await rejectsWithCode(client.getManifest(fx.repo, 'v1'), UpstreamErrorCode.auth);
    assert.match(err.message, /token request/);
    assert.match(err.message, /401/);
    await rejectsWithCode(client.ping(), UpstreamErrorCode.auth);
  });

  await t.test('anonymous gets a token without access: UPSTREAM_AUTH, not a loop', async () => {
    const { client } = upstreamClient(t, { url: registry.url });
    const before = issuer.requests();
    const err = await rejectsWithCode(client.getManifest(fx.repo, 'v1'), UpstreamErrorCode.auth);
    assert.match(err.message, /401/);
    assert.equal(issuer.requests() - before, 1);
  });
});

test('kid-signed tokens and access_token responses', async (t) => {
  const issuer = await startTokenIssuer(t, { keyHeader: 'kid', tokenField: 'access_token', omitExpiresIn: true });
  const registry = await startDockerRegistry(t, { token: issuer });
  const fx = await pushFixtures(t, registry);
  const { client } = upstreamClient(t, { url: registry.url });
  const m = await client.getManifest(fx.repo, 'multi');
  assert.equal(m.digest, fx.index.indexDigest);
  const layer = await bigLayer(fx);
  const blob = await client.fetchBlob(fx.repo, layer.digest);
  assert.equal(sha256(await readAll(blob.body)), layer.digest);
  assert.ok(issuer.log().every((r) => r.user === undefined), 'no credentials configured, none sent');
});

test('a refused cached token is dropped and replaced once', async (t) => {
  // A registry that accepts only the newest token, as if the old one had been revoked.
  let issued = 0;
  const realm = await startFakeServer(t, (_req, res) => {
    issued++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: `tok-${issued}`, expires_in: 300 }));
  });
  const upstream = await startFakeServer(t, (req, res) => {
    if (req.headers.authorization === `Bearer tok-${issued}`) {
      res.writeHead(200, { 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' });
      res.end('{}');
      return;
    }
    res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.url}/token",service="fake"`, 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
  });
  const { client } = upstreamClient(t, { url: upstream.url });
  await client.ping();
  await client.ping();
  assert.equal(issued, 1, 'the cached token is reused');
  issued++; // revoke tok-1: only tok-2 is good now, and the issuer will hand out tok-3
  await client.ping();
  assert.equal(issued, 3);
  assert.deepEqual(
    upstream.requests.map((r) => r.headers.authorization ?? '-'),
    ['-', 'Bearer tok-1', 'Bearer tok-1', 'Bearer tok-1', 'Bearer tok-3'],
  );
  assert.equal(new URL(realm.requests[0]!.url, realm.url).searchParams.get('service'), 'fake');
});

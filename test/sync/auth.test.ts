import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startTokenIssuer } from '../helpers/token-issuer.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { requireBinary } from '../helpers/bin.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { syncConfig, waitForGeneration, waitForStatus, writeDesired } from './helpers.ts';

const run = promisify(execFile);

test('sync from an upstream with basic auth (htpasswd); credentials from the satellite config', async (t) => {
  const dir = await makeTempDir(t, 'hs-sync-auth-');
  const htpasswd = join(dir, 'htpasswd');
  await writeFile(htpasswd, (await run(requireBinary('htpasswd'), ['-Bbn', 'puller', 'pa55'])).stdout);
  const upstream = await startDockerRegistry(t, { htpasswdFile: htpasswd });
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'sync-basic', layerSizes: [100_000] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/private/app:v1`, { destCreds: 'puller:pa55' });
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: upstream.url }, images: [{ repository: 'private/app', tags: ['v1'] }] });

  const wrong = await startSatellite(t, { config: { ...syncConfig(desired), upstream: { username: 'puller', password: 'nope' } } });
  const denied = await waitForStatus(wrong, (s) => s.sync.lastRun?.generation === 1 && !s.sync.running);
  assert.equal(denied.sync.appliedGeneration, null);
  assert.equal(denied.sync.lastRun?.errors[0]?.code, 'UPSTREAM_AUTH');
  assert.doesNotMatch(wrong.logs(), /nope/, 'passwords never reach the log');
  await wrong.stop();

  const sat = await startSatellite(t, { config: { ...syncConfig(desired), upstream: { username: 'puller', password: 'pa55' } } });
  await waitForGeneration(sat, 1);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/private/app:v1`, { raw: true })), img.manifestDigest);
});

test('sync from an upstream with token auth, as a Harbor-style robot account named in the desired state', async (t) => {
  const robot = 'robot$edge+site1';
  const issuer = await startTokenIssuer(t, { users: { [robot]: 'r0b0t' } });
  const upstream = await startDockerRegistry(t, { token: issuer });
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'sync-token', layerSizes: [200_000, 100_000] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/edge/app:v1`, { destCreds: `${robot}:r0b0t` });
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, {
    generation: 1,
    upstream: { url: upstream.url, username: robot, password: 'r0b0t' },
    images: [{ repository: 'edge/app', tags: ['v1'] }],
  });
  const before = issuer.requests();
  const sat = await startSatellite(t, { config: syncConfig(desired) });
  await waitForGeneration(sat, 1);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/edge/app:v1`, { raw: true })), img.manifestDigest);
  const requests = issuer.log().slice(before);
  assert.ok(requests.some((r) => r.user === robot && r.scopes.includes('repository:edge/app:pull')), 'a pull token for the robot');
  // Tokens are cached: a handful of token requests for a ping, two manifests and three blobs.
  assert.ok(requests.length <= 3, `${requests.length} token requests`);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { blobFile, getStatus, hashFile, layoutDigests, MiB, proxyConfig } from './helpers.ts';

test('first pull fills the cache from the upstream; with the upstream stopped the second pull still works', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'proxy-fill', layerSizes: [3 * MiB, 1 * MiB] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/apps/web:v1`);
  // A 1 s tag TTL, so the second pull must revalidate, find the upstream gone, and serve the cached tag.
  const sat = await startSatellite(t, { config: proxyConfig(upstream.url, { tagTtlSeconds: 1 }) });

  const first = await makeTempDir(t, 'hs-pull-');
  await skopeoCopy(`docker://${sat.host}/apps/web:v1`, `oci:${first}:v1`);
  const a = await layoutDigests(first);
  assert.equal(a.manifest, img.manifestDigest);
  assert.deepEqual(a.blobs, [img.configDigest, ...img.layerDigests]);
  // Every blob is now a verified file in the satellite's store.
  for (const d of a.blobs) assert.equal(await hashFile(blobFile(sat.dataDir, d)), d);
  const s1 = await getStatus(sat);
  assert.equal(s1.proxy.enabled, true);
  assert.equal(s1.proxy.blobMisses, 3);
  assert.ok(s1.proxy.upstreamBytes >= 4 * MiB, `upstream bytes ${s1.proxy.upstreamBytes}`);
  assert.ok(s1.proxy.cacheBytes >= 4 * MiB);

  await upstream.stop();
  await sleep(1100);
  const second = await makeTempDir(t, 'hs-pull-');
  await skopeoCopy(`docker://${sat.host}/apps/web:v1`, `oci:${second}:v1`);
  const b = await layoutDigests(second);
  assert.deepEqual(b, a);
  const s2 = await getStatus(sat);
  assert.equal(s2.proxy.blobMisses, 3, 'no blob fetched again');
  assert.equal(s2.proxy.upstreamBytes, s1.proxy.upstreamBytes);
  assert.ok(s2.proxy.blobHits >= 3);
  assert.ok(s2.proxy.staleServed >= 1, 'the tag past its TTL was served stale');
  assert.match(sat.logs(), /upstream unavailable; serving cached tag/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage, type ImageFixture } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { writeDesired } from '../sync/helpers.ts';
import { blobFile, getStatus, layoutDigests, MiB, proxyConfig, waitFor } from './helpers.ts';
import { stat } from 'node:fs/promises';

const present = (path: string) => stat(path).then(() => true, () => false);

test('LRU eviction under a quota; an image the desired state holds survives though least recently used', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const images: Record<string, ImageFixture> = {};
  for (const [name, size] of [['pinned', 2 * MiB], ['c1', 3 * MiB], ['c2', 3 * MiB], ['c3', 3 * MiB]] as const) {
    images[name] = await makeImage(layout, { tag: name, seed: `evict-${name}`, layerSizes: [size] });
    await skopeoCopy(`oci:${layout}:${name}`, `docker://${upstream.host}/lru/${name}:v1`);
  }
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  // 2 + 3 + 3 MiB fit; the third cached image does not.
  const quota = Math.round(8.5 * MiB);
  const sat = await startSatellite(t, {
    config: {
      ...proxyConfig(upstream.url, { cacheQuotaBytes: quota }),
      sync: { desiredStateFile: desired, intervalSeconds: 3600, retry: { baseMs: 50, maxMs: 500 } },
    },
  });
  const pull = async (name: string) => {
    const out = await makeTempDir(t, 'hs-pull-');
    await skopeoCopy(`docker://${sat.host}/lru/${name}:v1`, `oci:${out}:v1`);
    return layoutDigests(out);
  };

  // The pinned image comes in through the proxy first (least recently used of all), then the
  // desired state names it: sync finds it complete and holds it.
  assert.equal((await pull('pinned')).manifest, images.pinned!.manifestDigest);
  await writeDesired(desired, { generation: 1, upstream: { url: upstream.url }, images: [{ repository: 'lru/pinned', tags: ['v1'] }] });
  await waitFor('sync to hold the pinned image', async () => {
    const s = (await getStatus(sat)) as unknown as { sync: { appliedGeneration: number | null; running: boolean } };
    return s.sync.appliedGeneration === 1 && !s.sync.running ? true : undefined;
  });
  for (const name of ['c1', 'c2']) {
    await sleep(50);
    await pull(name);
  }
  const before = await getStatus(sat);
  assert.equal(before.proxy.evictedManifests, 0);
  await sleep(50);
  await pull('c3');

  const after = await waitFor('eviction', async () => {
    const s = await getStatus(sat);
    return s.proxy.evictedManifests > 0 ? s : undefined;
  });
  t.diagnostic(`cache ${after.proxy.cacheBytes} bytes of quota ${quota}; evicted ${after.proxy.evictedManifests} manifests, ${after.proxy.evictedBlobs} blobs, ${after.proxy.evictedBytes} bytes`);
  assert.ok(after.proxy.cacheBytes <= quota, `${after.proxy.cacheBytes} > ${quota}`);
  // The held image is sync's now: it no longer counts against the cache's quota.
  const sizeOf = (img: ImageFixture) => img.config.length + img.layers.reduce((n, l) => n + l.size, 0);
  assert.equal(after.proxy.cacheBytes, sizeOf(images.c2!) + sizeOf(images.c3!));
  assert.equal(after.proxy.evictedManifests, 1);
  assert.equal(after.proxy.evictedBlobs, 2, 'c1 config and layer');
  for (const d of [images.c1!.configDigest, ...images.c1!.layerDigests]) assert.equal(await present(blobFile(sat.dataDir, d)), false, `c1 blob ${d} evicted`);
  for (const name of ['pinned', 'c2', 'c3']) {
    for (const d of [images[name]!.configDigest, ...images[name]!.layerDigests]) assert.equal(await present(blobFile(sat.dataDir, d)), true, `${name} blob ${d} kept`);
  }
  // Evicted means gone from the repository too: a pull fetches it again (and evicts the next LRU).
  const gone = await fetch(`${sat.url}/v2/lru/c1/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(gone.status, 200);
  await gone.arrayBuffer();
  assert.ok((await getStatus(sat)).proxy.manifestMisses >= 5);

  // With the upstream gone, the kept images still pull.
  await upstream.stop();
  assert.equal((await pull('pinned')).manifest, images.pinned!.manifestDigest);
  assert.equal((await pull('c3')).manifest, images.c3!.manifestDigest);
});

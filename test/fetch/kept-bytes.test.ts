import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { firstLostBytes, startCountingRelay } from '../helpers/counting-relay.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { blobFile, hashFile, MiB, proxyConfig, fetchHash, getStatus, waitFor } from '../proxy/helpers.ts';
import { syncConfig, waitForGeneration, writeDesired } from '../sync/helpers.ts';

// Budgets that are not multiples of any buffer size, so cuts land mid-chunk and mid-read.
const CUTS = [1_234_567, 777_779, 2_000_003, 333_331, 1_500_007];

test('sync over a link cut at odd offsets: every blob byte received before a cut is kept, each resume asks from exactly there', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'kept-sync', layerSizes: [9 * MiB, 5 * MiB + 12_345] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/kept/sync:v1`);
  const relay = await startCountingRelay(t, { target: upstream.host, cutAfter: CUTS });
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: relay.url }, images: [{ repository: 'kept/sync', tags: ['v1'] }] });
  const sat = await startSatellite(t, { config: syncConfig(desired) });
  await waitForGeneration(sat, 1, 120_000);

  const blobs = relay.blobs();
  const wanted = [...img.layers, { digest: img.configDigest, size: img.config.length }];
  let size = 0;
  for (const b of wanted) {
    size += b.size;
    assert.equal(firstLostBytes(blobs, b.digest), undefined);
    assert.equal(await hashFile(blobFile(sat.dataDir, b.digest)), b.digest);
  }
  t.diagnostic(`${relay.cuts()} cuts; ${relay.blobBytes()} blob bytes sent for ${size} bytes of blobs`);
  assert.ok(relay.cuts() >= 6, `${relay.cuts()} cuts`);
  assert.equal(relay.blobBytes(), size, 'every blob byte crossed the link exactly once');
});

test('a proxy fill over a link cut at odd offsets: every byte received before a cut is kept, each resume asks from exactly there', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'kept-proxy', layerSizes: [11 * MiB + 777] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/kept/proxy:v1`);
  const relay = await startCountingRelay(t, { target: upstream.host, cutAfter: CUTS });
  const sat = await startSatellite(t, { config: proxyConfig(relay.url) });

  const results = await Promise.all([1, 2].map(() => fetchHash(`${sat.url}/v2/kept/proxy/blobs/${layer.digest}`)));
  for (const r of results) {
    assert.equal(r.status, 200, r.error);
    assert.equal(r.digest, layer.digest);
  }
  await waitFor('the commit', async () => ((await getStatus(sat)).store.blobs === 1 ? true : undefined));
  const blobs = relay.blobs();
  t.diagnostic(`${relay.cuts()} cuts; ${relay.blobBytes()} blob bytes sent for a ${layer.size}-byte blob`);
  assert.equal(firstLostBytes(blobs, layer.digest), undefined);
  assert.ok(relay.cuts() >= 6, `${relay.cuts()} cuts`);
  assert.equal(relay.blobBytes(), layer.size, 'every blob byte crossed the link exactly once');
  assert.equal(await hashFile(blobFile(sat.dataDir, layer.digest)), layer.digest);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startCountingRelay } from '../helpers/counting-relay.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { blobFile, fetchHash, getStatus, hashFile, MiB, proxyConfig, startThrottle, waitFor } from '../proxy/helpers.ts';
import { syncConfig, waitForGeneration, writeDesired } from '../sync/helpers.ts';

/** A satellite that syncs a desired state and proxies misses, both from `upstreamUrl`. */
function syncAndProxy(desired: string, upstreamUrl: string, sync: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...syncConfig(desired, sync), proxy: proxyConfig(upstreamUrl).proxy };
}

test('a proxy miss while sync downloads the same blob: one upstream fetch, the clients read the growing file', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'one-fetch-sync-first', layerSizes: [24 * MiB] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/one/fetch:v1`);
  const relay = await startCountingRelay(t, { target: upstream.host, cutAfter: [] });
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: relay.url }, images: [{ repository: 'one/fetch', tags: ['v1'] }] });
  // Sync's bandwidth limit keeps the download going for seconds.
  const sat = await startSatellite(t, { config: syncAndProxy(desired, relay.url, { bandwidthBytesPerSecond: 6 * MiB }) });

  await waitFor('sync downloading the layer', async () => (relay.blobs().some((b) => b.digest === layer.digest) ? true : undefined), 60_000);
  const url = `${sat.url}/v2/one/fetch/blobs/${layer.digest}`;
  const clients = await Promise.all([fetchHash(url), fetchHash(url)]);
  for (const c of clients) {
    assert.equal(c.status, 200, c.error);
    assert.equal(c.digest, layer.digest);
    assert.equal(c.bytes, layer.size);
  }
  await waitForGeneration(sat, 1, 60_000);

  const gets = relay.blobs().filter((b) => b.digest === layer.digest);
  t.diagnostic(`${gets.length} upstream GET(s) of the layer, ${gets.reduce((n, b) => n + b.sent, 0)} bytes for ${layer.size}`);
  assert.equal(gets.length, 1, 'one upstream GET of the layer');
  assert.equal(gets[0]!.sent, layer.size, 'the layer crossed the link once');
  const s = await getStatus(sat);
  assert.equal(s.proxy.blobMisses, 0, 'the proxy started no fetch of its own');
  assert.equal(s.proxy.fetchesJoined, 2);
  assert.equal(await hashFile(blobFile(sat.dataDir, layer.digest)), layer.digest);
});

test('sync planning a blob a proxy client is pulling: it joins that fetch, one upstream GET', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'one-fetch-proxy-first', layerSizes: [24 * MiB] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/one/fetch:v1`);
  const slow = await startThrottle(t, upstream.host, 6 * MiB);
  const relay = await startCountingRelay(t, { target: slow.url.slice('http://'.length), cutAfter: [] });
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  // No desired state yet: the proxy client comes first.
  const sat = await startSatellite(t, { config: syncAndProxy(desired, relay.url) });
  const pulling = fetchHash(`${sat.url}/v2/one/fetch/blobs/${layer.digest}`);
  await waitFor('the proxy fill under way', async () => ((await getStatus(sat)).proxy.inFlight === 1 ? true : undefined));
  await writeDesired(desired, { generation: 1, upstream: { url: relay.url }, images: [{ repository: 'one/fetch', tags: ['v1'] }] });

  const got = await pulling;
  assert.equal(got.status, 200, got.error);
  assert.equal(got.digest, layer.digest);
  const done = await waitForGeneration(sat, 1, 60_000);
  assert.equal(done.sync.lastRun?.result, 'ok');
  const gets = relay.blobs().filter((b) => b.digest === layer.digest);
  t.diagnostic(`${gets.length} upstream GET(s) of the layer, ${gets.reduce((n, b) => n + b.sent, 0)} bytes for ${layer.size}`);
  assert.equal(gets.length, 1, 'one upstream GET of the layer');
  assert.equal(gets[0]!.sent, layer.size);
  assert.equal(await hashFile(blobFile(sat.dataDir, layer.digest)), layer.digest);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { firstLostBytes, startCountingRelay, tilingBreak } from '../helpers/counting-relay.ts';
import { freePort } from '../helpers/ports.ts';
import { makeTempDir, type Teardown } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { blobFile, hashFile, MiB, proxyConfig, fetchHash, getStatus, waitFor } from '../proxy/helpers.ts';
import { syncConfig, waitForGeneration, writeDesired } from '../sync/helpers.ts';
import { peerSatelliteConfig, peersStatus, verifiedBlobs } from '../peers/helpers.ts';

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

/**
 * Satellite A holds an image (synced straight from the upstream); B syncs the same image with A as
 * its only peer, reached through a counting relay that cuts A's blob responses at odd offsets, and
 * the upstream behind a second, uncutting counting relay.
 */
async function peerOverCuttingRelay(t: Teardown, seed: string, peers: Record<string, unknown>) {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed, layerSizes: [7 * MiB + 4321, 4 * MiB + 12_345] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/kept/peers:v1`);
  const dir = await makeTempDir(t, 'hs-desired-');
  const desiredA = join(dir, 'a.json');
  await writeDesired(desiredA, { generation: 1, upstream: { url: upstream.url }, images: [{ repository: 'kept/peers', tags: ['v1'] }] });
  const a = await startSatellite(t, { config: peerSatelliteConfig(desiredA, await freePort(), { static: [] }) });
  await waitForGeneration(a, 1, 60_000);

  const toPeer = await startCountingRelay(t, { target: a.host, cutAfter: CUTS });
  const wan = await startCountingRelay(t, { target: upstream.host, cutAfter: [] });
  const desiredB = join(dir, 'b.json');
  await writeDesired(desiredB, { generation: 1, upstream: { url: wan.url }, images: [{ repository: 'kept/peers', tags: ['v1'] }] });
  const b = await startSatellite(t, { config: peerSatelliteConfig(desiredB, await freePort(), { static: [{ id: 'a', url: toPeer.url }], ...peers }) });
  const s = await waitForGeneration(b, 1, 120_000);
  assert.equal(s.sync.lastRun?.result, 'ok');
  const wanted = [...img.layers, { digest: img.configDigest, size: img.config.length }];
  assert.deepEqual(await verifiedBlobs(b.dataDir), wanted.map((w) => w.digest).sort());
  return { b, img, wanted, toPeer, wan };
}

test('a blob from a peer over a link cut at odd offsets: every byte the peer sent before a cut is kept, each resume asks the peer from exactly there', async (t) => {
  // No cool-down after a peer failure: every resume goes back to the same peer.
  const { b, wanted, toPeer, wan } = await peerOverCuttingRelay(t, 'kept-peers', { downCooldownMs: 0 });
  const blobs = toPeer.blobs();
  let size = 0;
  for (const w of wanted) {
    size += w.size;
    assert.equal(firstLostBytes(blobs, w.digest), undefined);
    assert.equal(tilingBreak(blobs, w.digest, w.size), undefined);
  }
  const peer = (await peersStatus(b)).peers.find((p) => p.id === 'a');
  t.diagnostic(`${toPeer.cuts()} cuts; the peer sent ${toPeer.blobBytes()} blob bytes for ${size} bytes of blobs; the upstream ${wan.blobBytes()}`);
  assert.ok(toPeer.cuts() >= 6, `${toPeer.cuts()} cuts`);
  assert.equal(wan.blobBytes(), 0, 'nothing came from the upstream');
  assert.equal(toPeer.blobBytes(), size, 'every blob byte crossed the link to the peer exactly once');
  assert.equal(peer?.bytesReceived, size, `the peer's counter: ${JSON.stringify(peer)}`);
});

test('a blob from a peer cut at an odd offset, resumed from the upstream: the two together send every byte exactly once', async (t) => {
  // The default cool-down: after its first cut the peer is skipped and the upstream resumes with Range.
  const { wanted, toPeer, wan } = await peerOverCuttingRelay(t, 'kept-peers-wan', {});
  const blobs = [...toPeer.blobs(), ...wan.blobs()];
  let size = 0;
  for (const w of wanted) {
    size += w.size;
    assert.equal(tilingBreak(blobs, w.digest, w.size), undefined);
  }
  t.diagnostic(`${toPeer.cuts()} cuts; the peer sent ${toPeer.blobBytes()} blob bytes, the upstream ${wan.blobBytes()}, for ${size} bytes of blobs`);
  assert.ok(toPeer.cuts() >= 1 && toPeer.blobBytes() > 0, 'the peer sent bytes and was cut');
  assert.ok(wan.blobs().some((g) => g.start > 0), 'the upstream resumed a blob the peer had begun');
  assert.equal(toPeer.blobBytes() + wan.blobBytes(), size, 'every blob byte crossed a link exactly once');
});

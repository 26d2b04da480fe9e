import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { freePort } from '../helpers/ports.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage, sha256, type ImageFixture } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { waitForGeneration, writeDesired } from '../sync/helpers.ts';
import type { Teardown } from '../helpers/cleanup.ts';
import { startHangingServer } from '../helpers/hanging-server.ts';
import { peerSatelliteConfig, peersStatus, verifiedBlobs } from './helpers.ts';

const MB = 1024 * 1024;

async function upstreamWithImage(t: Teardown, seed: string, layerSizes: number[]) {
  const registry = await startDockerRegistry(t, { accessLog: true });
  const layout = await makeTempDir(t, 'hs-peers-fixture-');
  const image = await makeImage(layout, { tag: 'v1', seed, layerSizes });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${registry.host}/site/app:v1`);
  return { registry, image };
}

function blobsOf(image: ImageFixture): string[] {
  return [image.configDigest, ...image.layerDigests].sort();
}


test('a peer serving corrupt bytes is caught by the digest check, counted, and the blob comes from the upstream', async (t) => {
  const { registry, image } = await upstreamWithImage(t, 'peers-corrupt', [6 * MB, 5 * MB, 4 * MB]);
  const dir = await makeTempDir(t, 'hs-peers-desired-');
  const desired = join(dir, 'desired.json');
  const doc = { generation: 1, upstream: { url: registry.url }, images: [{ repository: 'site/app', tags: ['v1'] }] };
  await writeDesired(desired, doc);

  // A holds the image; B's only peer is A behind a proxy that flips one byte past the first 1 MB of every connection.
  const portA = await freePort();
  const a = await startSatellite(t, { config: peerSatelliteConfig(desired, portA, { static: [] }) });
  await waitForGeneration(a, 1);
  const liar = await startFaultProxy(t, { target: a.host, flipByteAt: 1 * MB });
  const portB = await freePort();
  const b = await startSatellite(t, { config: peerSatelliteConfig(desired, portB, { static: [{ id: 'liar', url: liar.url }] }) });
  const s = await waitForGeneration(b, 1, 60_000);
  assert.equal(s.sync.lastRun?.result, 'ok');

  const st = await peersStatus(b);
  const peer = st.peers.find((p) => p.id === 'liar');
  assert.ok(peer, `no counters for the liar: ${JSON.stringify(st)}`);
  assert.ok(peer.badDigests >= 1, `bad digests not counted: ${JSON.stringify(peer)}`);
  assert.ok(peer.bytesReceived > 1 * MB, 'the corrupt bytes did come from the peer');
  // The store holds only correct blobs, and all of them.
  assert.deepEqual(await verifiedBlobs(b.dataDir), blobsOf(image));
  assert.equal(sha256(await skopeoInspect(`docker://${b.host}/site/app:v1`, { raw: true })), image.manifestDigest);
  // What the liar got wrong was fetched again from the upstream.
  const upstreamGets = registry.logs().split('\n').filter((l) => /GET \/v2\/site\/app\/blobs\//.test(l)).length;
  assert.ok(upstreamGets >= 4 + peer.badDigests, `upstream saw ${upstreamGets} blob GETs`);
  assert.ok(b.logs().includes('peer sent bytes that do not match the digest'));
});

test('a dead peer and a hung peer cost seconds: the satellite falls back to the upstream', async (t) => {
  const { registry, image } = await upstreamWithImage(t, 'peers-dead', [3 * MB, 2 * MB, 1 * MB, 512 * 1024]);
  const dir = await makeTempDir(t, 'hs-peers-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: registry.url }, images: [] });
  const closed = `http://127.0.0.1:${await freePort()}`;
  const hung = await startHangingServer(t);
  const port = await freePort();
  const sat = await startSatellite(t, {
    config: peerSatelliteConfig(desired, port, { static: [{ id: 'dead', url: closed }, { id: 'hung', url: hung.url }], firstByteTimeoutMs: 1500 }),
  });
  await waitForGeneration(sat, 1);

  const started = Date.now();
  await writeDesired(desired, { generation: 2, upstream: { url: registry.url }, images: [{ repository: 'site/app', tags: ['v1'] }] });
  const s = await waitForGeneration(sat, 2, 30_000);
  const seconds = (Date.now() - started) / 1000;
  t.diagnostic(`synced past a dead and a hung peer in ${seconds.toFixed(1)} s`);
  assert.equal(s.sync.lastRun?.result, 'ok');
  assert.ok(seconds < 6, `took ${seconds} s`);
  assert.deepEqual(await verifiedBlobs(sat.dataDir), blobsOf(image));

  const st = await peersStatus(sat);
  const dead = st.peers.find((p) => p.id === 'dead');
  const hang = st.peers.find((p) => p.id === 'hung');
  assert.ok(dead && dead.failures >= 1 && /refused/.test(dead.lastError ?? ''), JSON.stringify(dead));
  assert.ok(hang && hang.failures >= 1 && /in time/.test(hang.lastError ?? ''), JSON.stringify(hang));
  assert.ok(hung.accepted() >= 1, 'the hung peer was asked');
  assert.equal(dead.bytesReceived + hang.bytesReceived, 0);
});

test('a peer cut mid-blob: the download resumes from the bytes written, on the upstream, with Range', async (t) => {
  const { registry, image } = await upstreamWithImage(t, 'peers-cut', [6 * MB, 5 * MB, 4 * MB]);
  const wan = await startFaultProxy(t, { target: registry.host });
  const dir = await makeTempDir(t, 'hs-peers-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: wan.url }, images: [{ repository: 'site/app', tags: ['v1'] }] });
  const a = await startSatellite(t, { config: peerSatelliteConfig(desired, await freePort(), { static: [] }) });
  await waitForGeneration(a, 1);
  const flaky = await startFaultProxy(t, { target: a.host, cutEveryBytes: 3 * MB });
  const before = wan.bytesFromTarget();
  const b = await startSatellite(t, { config: peerSatelliteConfig(desired, await freePort(), { static: [{ id: 'flaky', url: flaky.url }] }) });
  const s = await waitForGeneration(b, 1, 60_000);
  assert.equal(s.sync.lastRun?.result, 'ok');
  assert.deepEqual(await verifiedBlobs(b.dataDir), blobsOf(image));

  const peer = (await peersStatus(b)).peers.find((p) => p.id === 'flaky');
  assert.ok(peer && peer.failures >= 1 && peer.bytesReceived >= 2 * MB, JSON.stringify(peer));
  const setBytes = image.layers.reduce((n, l) => n + l.size, image.config.length);
  const fromWan = wan.bytesFromTarget() - before;
  t.diagnostic(`peer gave ${(peer.bytesReceived / MB).toFixed(1)} MiB before the cut, upstream ${(fromWan / MB).toFixed(1)} MiB of ${(setBytes / MB).toFixed(1)}`);
  // What the peer delivered was not fetched again: the upstream sent the rest, plus at most what
  // was still buffered (not yet on disk) in each cut stream.
  assert.ok(fromWan < setBytes - peer.bytesReceived + 3 * 512 * 1024, `upstream sent ${fromWan} bytes`);
  assert.ok(fromWan < setBytes * 0.9, `upstream sent ${fromWan} of ${setBytes} bytes: nothing was resumed`);
});

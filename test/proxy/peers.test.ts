import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSatellite } from '../helpers/satellite.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { freePort } from '../helpers/ports.ts';
import { startHangingServer } from '../helpers/hanging-server.ts';
import { peersStatus, verifiedBlobs } from '../peers/helpers.ts';
import { fetchHash, getStatus, MiB, waitFor } from './helpers.ts';
import { blobsOf, imageBytes, pull, siteConfig, upstreamWithImage } from './site.ts';

test('two proxy satellites of a site: the second pull of an image takes its blobs from the first, not the WAN', async (t) => {
  const { image, wan } = await upstreamWithImage(t, 'proxy-peers-share', [30 * MiB, 20 * MiB, 10 * MiB]);
  const [portA, portB] = [await freePort(), await freePort()];
  const a = await startSatellite(t, { config: siteConfig(wan.url, portA, 'a', [{ id: 'b', url: `http://127.0.0.1:${portB}` }]) });
  const b = await startSatellite(t, { config: siteConfig(wan.url, portB, 'b', [{ id: 'a', url: `http://127.0.0.1:${portA}` }]) });
  const total = imageBytes(image);

  const first = await pull(t, a);
  assert.equal(first.manifest, image.manifestDigest);
  assert.deepEqual(first.blobs, blobsOf(image));
  const wanFirst = wan.bytesFromTarget();
  assert.ok(wanFirst >= total, `first pull read ${wanFirst} bytes from the WAN for ${total}`);

  const second = await pull(t, b);
  assert.equal(second.manifest, image.manifestDigest);
  assert.deepEqual(second.blobs, first.blobs);
  const wanSecond = wan.bytesFromTarget() - wanFirst;
  t.diagnostic(`image ${(total / MiB).toFixed(1)} MiB: pull via A ${first.seconds.toFixed(1)} s, ${wanFirst} WAN bytes; pull via B ${second.seconds.toFixed(1)} s, ${wanSecond} WAN bytes (${((wanSecond / total) * 100).toFixed(3)} %)`);
  assert.ok(wanSecond < total * 0.05, `second pull read ${wanSecond} bytes from the WAN for ${total}`);

  // B's blobs are verified files, and A's counters show where they came from.
  assert.deepEqual(await verifiedBlobs(b.dataDir), [...blobsOf(image)].sort());
  const fromA = (await peersStatus(b)).peers.find((p) => p.id === 'a');
  const layers = image.layers.reduce((n, l) => n + l.size, 0);
  assert.ok(fromA && fromA.bytesReceived >= layers && fromA.blobsReceived >= 4 && fromA.badDigests === 0, JSON.stringify(fromA));
  await waitFor('fills counted', async () => ((await getStatus(b)).proxy.inFlight === 0 ? true : undefined), 5000);
  const sb = (await getStatus(b)).proxy;
  assert.equal(sb.askPeers, true);
  assert.equal(sb.blobsFromPeers, 4);
  assert.ok(sb.peerBytes >= layers);
  assert.ok(sb.upstreamBytes < total * 0.05, `B counted ${sb.upstreamBytes} upstream bytes`);
  assert.ok(((await peersStatus(a)).bytesServed) >= layers, 'A counted the bytes it served');
});

test('a peer sending corrupt bytes: never a complete wrong blob, counted, refetched from the upstream', async (t) => {
  const { image, wan } = await upstreamWithImage(t, 'proxy-peers-corrupt', [4 * MiB, 12 * MiB]);
  const [portA, portB] = [await freePort(), await freePort()];
  const a = await startSatellite(t, { config: siteConfig(wan.url, portA, 'a', []) });
  await pull(t, a);
  // B reaches A only through a link that inverts one byte of each connection (1 MiB in).
  const liar = await startFaultProxy(t, { target: a.host, flipByteAt: 1 * MiB });
  const b = await startSatellite(t, { config: siteConfig(wan.url, portB, 'b', [{ id: 'liar', url: liar.url }]) });
  const [small, big] = image.layerDigests as [string, string];
  const blobUrl = (d: string) => `${b.url}/v2/site/app/blobs/${d}`;
  const liarStatus = async () => (await peersStatus(b)).peers.find((p) => p.id === 'liar');

  // 1. A client streaming the blob while it arrives: the bad bytes are found only at the end, so
  //    its response is cut before the last byte; it never gets a complete body.
  const got = await fetchHash(blobUrl(small));
  assert.ok(got.error !== undefined && got.bytes < image.layers[0]!.size, `client got ${JSON.stringify(got)}`);
  assert.equal((await liarStatus())?.badDigests, 1);
  // The next request does not ask the liar for that digest: the upstream, verified.
  const again = await fetchHash(blobUrl(small));
  assert.deepEqual({ status: again.status, digest: again.digest }, { status: 200, digest: small });

  // 2. No client read yet (HEAD starts the fill): the same fill starts over from the upstream.
  liar.setFlipByteAt(liar.bytesFromTarget() + 1 * MiB);
  const wanBefore = wan.bytesFromTarget();
  const head = await fetch(blobUrl(big), { method: 'HEAD' });
  assert.equal(head.status, 200);
  await waitFor('the big layer in B', async () => ((await getStatus(b)).proxy.inFlight === 0 ? true : undefined));
  assert.equal((await liarStatus())?.badDigests, 2);
  assert.ok(wan.bytesFromTarget() - wanBefore >= image.layers[1]!.size, 'the big layer came from the upstream');
  assert.match(b.logs(), /blob failed verification; fetching it from another source/);
  const misses = (await getStatus(b)).proxy.blobMisses;
  const big2 = await fetchHash(blobUrl(big));
  assert.deepEqual({ status: big2.status, digest: big2.digest }, { status: 200, digest: big });
  assert.equal((await getStatus(b)).proxy.blobMisses, misses, 'served from the store');

  // 3. A whole pull through B now succeeds, and B's store holds only correct blobs.
  liar.setFlipByteAt(undefined);
  const p = await pull(t, b);
  assert.equal(p.manifest, image.manifestDigest);
  assert.deepEqual(p.blobs, blobsOf(image));
  assert.deepEqual(await verifiedBlobs(b.dataDir), [...blobsOf(image)].sort());
  assert.match(b.logs(), /peer sent bytes that do not match the digest/);
});


test('a dead and a hung peer cost at most seconds on the first miss, then nothing', async (t) => {
  const { image, wan } = await upstreamWithImage(t, 'proxy-peers-dead', [3 * MiB, 2 * MiB, 1 * MiB]);
  const dead = `http://127.0.0.1:${await freePort()}`;
  const hung = (await startHangingServer(t)).url;
  const port = await freePort();
  const sat = await startSatellite(t, {
    config: siteConfig(wan.url, port, 'b', [{ id: 'dead', url: dead }, { id: 'hung', url: hung }], { firstByteTimeoutMs: 1500 }),
  });
  const [first, ...rest] = image.layerDigests as [string, ...string[]];
  const started = Date.now();
  const got = await fetchHash(`${sat.url}/v2/site/app/blobs/${first}`);
  const firstMiss = (Date.now() - started) / 1000;
  assert.deepEqual({ status: got.status, digest: got.digest }, { status: 200, digest: first });
  const later = Date.now();
  for (const d of rest) assert.equal((await fetchHash(`${sat.url}/v2/site/app/blobs/${d}`)).digest, d);
  const laterMisses = (Date.now() - later) / 1000;
  t.diagnostic(`first miss past a dead and a hung peer: ${firstMiss.toFixed(2)} s; ${rest.length} more misses (peers cooling down): ${laterMisses.toFixed(2)} s`);
  assert.ok(firstMiss < 4, `first miss took ${firstMiss} s`);
  assert.ok(laterMisses < 2, `later misses took ${laterMisses} s`);
  const st = await peersStatus(sat);
  const d = st.peers.find((p) => p.id === 'dead');
  const h = st.peers.find((p) => p.id === 'hung');
  assert.ok(d && d.failures === 1 && /refused/.test(d.lastError ?? ''), JSON.stringify(d));
  assert.ok(h && h.failures === 1 && /in time/.test(h.lastError ?? ''), JSON.stringify(h));
  const p = await pull(t, sat);
  assert.deepEqual(p.blobs, blobsOf(image));
});


test('proxy.askPeers: false keeps proxy misses on the upstream even with a peers section', async (t) => {
  const { image, wan } = await upstreamWithImage(t, 'proxy-peers-off', [2 * MiB]);
  const [portA, portB] = [await freePort(), await freePort()];
  const a = await startSatellite(t, { config: siteConfig(wan.url, portA, 'a', [{ id: 'b', url: `http://127.0.0.1:${portB}` }]) });
  const config = siteConfig(wan.url, portB, 'b', [{ id: 'a', url: `http://127.0.0.1:${portA}` }]);
  const b = await startSatellite(t, { config: { ...config, proxy: { ...config.proxy, askPeers: false } } });
  await pull(t, a);
  const before = wan.bytesFromTarget();
  assert.deepEqual((await pull(t, b)).blobs, blobsOf(image));
  assert.ok(wan.bytesFromTarget() - before >= image.layers[0]!.size, 'B read the image from the WAN');
  const st = await getStatus(b);
  assert.equal(st.proxy.askPeers, false);
  assert.equal((await peersStatus(b)).peers.reduce((n, p) => n + p.bytesReceived, 0), 0);
});

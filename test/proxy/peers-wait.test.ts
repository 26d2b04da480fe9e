import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { freePort } from '../helpers/ports.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { peersStatus } from '../peers/helpers.ts';
import { writeDesired } from '../sync/helpers.ts';
import { fetchHash, getStatus, MiB, startThrottle, waitFor } from './helpers.ts';
import { pull, siteConfig, TOKEN, upstreamWithImage } from './site.ts';

test('a peer cut mid-blob: the proxy fill resumes from the upstream and the client gets one whole response', async (t) => {
  const { image, wan } = await upstreamWithImage(t, 'proxy-peers-cut', [12 * MiB]);
  const a = await startSatellite(t, { config: siteConfig(wan.url, await freePort(), 'a', []) });
  await pull(t, a);
  const flaky = await startFaultProxy(t, { target: a.host, cutEveryBytes: 5 * MiB });
  const b = await startSatellite(t, { config: siteConfig(wan.url, await freePort(), 'b', [{ id: 'flaky', url: flaky.url }]) });
  const layer = image.layerDigests[0]!;
  const before = wan.bytesFromTarget();
  const got = await fetchHash(`${b.url}/v2/site/app/blobs/${layer}`);
  assert.deepEqual({ status: got.status, digest: got.digest, bytes: got.bytes }, { status: 200, digest: layer, bytes: image.layers[0]!.size });
  const fromWan = wan.bytesFromTarget() - before;
  const peer = (await peersStatus(b)).peers.find((p) => p.id === 'flaky');
  t.diagnostic(`12 MiB layer: ${((peer?.bytesReceived ?? 0) / MiB).toFixed(1)} MiB from the peer before the cut, ${(fromWan / MiB).toFixed(1)} MiB resumed from the upstream`);
  assert.ok(peer && peer.failures === 1 && peer.bytesReceived >= 4 * MiB, JSON.stringify(peer));
  // Only the rest crossed the WAN (plus what was buffered, not yet written, when the cut came).
  assert.ok(fromWan < image.layers[0]!.size - peer.bytesReceived + 1 * MiB, `upstream sent ${fromWan} bytes`);
  assert.match(b.logs(), /blob from peer cut; resuming from the upstream/);
});

test('a miss while a member is downloading the blob (its sync) waits for it, at most proxy.peerWaitMs', async (t) => {
  const { registry, image, wan } = await upstreamWithImage(t, 'proxy-peers-wait', [8 * MiB]);
  // A syncs the image over a slow link (about 4 s for the layer, a window a loaded machine still
  // sees); B is a proxy satellite of the same site.
  const slow = await startThrottle(t, registry.host, 2 * MiB);
  const dir = await makeTempDir(t, 'hs-proxy-peers-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: slow.url }, images: [{ repository: 'site/app', tags: ['v1'] }] });
  const [portA, portB] = [await freePort(), await freePort()];
  const a = await startSatellite(t, {
    config: { ...siteConfig(wan.url, portA, 'a', []), sync: { desiredStateFile: desired, intervalSeconds: 3600 } },
  });
  const config = siteConfig(wan.url, portB, 'b', [{ id: 'a', url: a.url }]);
  const b = await startSatellite(t, { config: { ...config, proxy: { ...config.proxy, peerWaitMs: 10_000 } } });
  const layer = image.layerDigests[0]!;
  await waitFor('A downloading the layer', async () => {
    const res = await fetch(`${a.url}/_satellite/peer/state/${layer}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const st = (await res.json()) as { state: string };
    return st.state === 'fetching' ? true : undefined;
  }, 60_000);
  const before = wan.bytesFromTarget();
  const started = Date.now();
  const got = await fetchHash(`${b.url}/v2/site/app/blobs/${layer}`);
  const seconds = (Date.now() - started) / 1000;
  assert.deepEqual({ status: got.status, digest: got.digest }, { status: 200, digest: layer });
  const fromWan = wan.bytesFromTarget() - before;
  t.diagnostic(`B's miss waited for A's sync download: ${seconds.toFixed(1)} s, ${fromWan} bytes from B's upstream`);
  assert.ok(fromWan < 64 * 1024, `B read ${fromWan} bytes from the WAN`);
  // Counted when the fill is committed, a moment after the client's last byte.
  await waitFor('the fill counted', async () => ((await getStatus(b)).proxy.blobsFromPeers === 1 ? true : undefined), 5000);
  assert.ok(((await peersStatus(b)).peers.find((p) => p.id === 'a')?.bytesReceived ?? 0) >= image.layers[0]!.size);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { freePort } from '../helpers/ports.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeLayer, writeImage, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { waitForGeneration, writeDesired } from '../sync/helpers.ts';
import { peerSatelliteConfig, peersStatus, verifiedBlobs } from './helpers.ts';

const MB = 1024 * 1024;
const AMD = { os: 'linux', architecture: 'amd64' };

test('three satellites at one site sync ~300 MB: the WAN carries it about once, all end up identical', async (t) => {
  const registry = await startDockerRegistry(t);
  // Every byte the satellites read from the upstream passes this counting proxy.
  const wan = await startFaultProxy(t, { target: registry.host });
  const layout = await makeTempDir(t, 'hs-peers-fixture-');
  const base = await makeLayer('peers-base', 80 * MB, { dir: layout });
  const mid = await makeLayer('peers-mid', 60 * MB, { dir: layout });
  const apps = [];
  for (const [i, name] of ['web', 'api', 'worker'].entries()) {
    const own = await makeLayer(`peers-app-${name}`, 50 * MB, { dir: layout });
    const layers = i < 2 ? [base, mid, own] : [base, own];
    apps.push({ name, image: await writeImage(layout, { tag: name, layers, platform: AMD }) });
  }
  for (const { name } of apps) await skopeoCopy(`oci:${layout}:${name}`, `docker://${registry.host}/site/${name}:v1`);
  const distinct = new Map<string, number>();
  for (const { image } of apps) {
    distinct.set(image.configDigest, image.config.length);
    for (const l of image.layers) distinct.set(l.digest, l.size);
  }
  const setBytes = [...distinct.values()].reduce((a, b) => a + b, 0);
  assert.ok(setBytes > 280 * MB, `fixture is ${setBytes} bytes`);

  const dir = await makeTempDir(t, 'hs-peers-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: wan.url }, images: [] });
  const ports = [await freePort(), await freePort(), await freePort()];
  const members = ports.map((p) => ({ url: `http://127.0.0.1:${p}` }));
  const sats = await Promise.all(
    ports.map((port) => startSatellite(t, { config: peerSatelliteConfig(desired, port, { static: members, token: 'site-secret-0123456789' }) })),
  );
  await Promise.all(sats.map((s) => waitForGeneration(s, 1)));
  const before = wan.bytesFromTarget();

  // One new desired state reaches the whole site at once (as Ground Control would publish it).
  const started = Date.now();
  await writeDesired(desired, {
    generation: 2,
    upstream: { url: wan.url },
    images: apps.map(({ name }) => ({ repository: `site/${name}`, tags: ['v1'] })),
  });
  const done = await Promise.all(sats.map((s) => waitForGeneration(s, 2, 120_000)));
  const seconds = (Date.now() - started) / 1000;
  for (const s of done) assert.equal(s.sync.lastRun?.result, 'ok');

  const wanBytes = wan.bytesFromTarget() - before;
  t.diagnostic(`set ${(setBytes / MB).toFixed(1)} MiB; upstream sent ${(wanBytes / MB).toFixed(1)} MiB (${(wanBytes / setBytes).toFixed(2)}x) in ${seconds.toFixed(1)} s`);
  assert.ok(wanBytes <= setBytes * 1.2, `upstream sent ${wanBytes} bytes for a ${setBytes}-byte set (${(wanBytes / setBytes).toFixed(2)}x)`);

  // Same verified content everywhere, and every image resolves to the upstream's digest.
  const stores = await Promise.all(sats.map((s) => verifiedBlobs(s.dataDir)));
  for (const digests of stores) {
    for (const d of distinct.keys()) assert.ok(digests.includes(d), `blob ${d} missing`);
    assert.deepEqual(digests, stores[0]);
  }
  for (const sat of sats) {
    for (const { name, image } of apps) {
      assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/site/${name}:v1`, { raw: true })), image.manifestDigest);
    }
  }
  // The LAN carried the rest: peers received bytes, and nothing was flagged.
  const statuses = await Promise.all(sats.map(peersStatus));
  const lan = statuses.flatMap((s) => s.peers).reduce((a, p) => a + p.bytesReceived, 0);
  t.diagnostic(`peers carried ${(lan / MB).toFixed(1)} MiB`);
  assert.ok(lan >= setBytes * 1.5, `peers carried only ${lan} bytes`);
  assert.equal(statuses.flatMap((s) => s.peers).reduce((a, p) => a + p.badDigests, 0), 0);
  const served = statuses.reduce((a, s) => a + s.bytesServed, 0);
  assert.ok(Math.abs(served - lan) < 64 * MB, `served ${served} vs received ${lan}`);
});

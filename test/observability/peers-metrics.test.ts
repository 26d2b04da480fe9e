import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { freePort } from '../helpers/ports.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeLayer, writeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { waitForGeneration, writeDesired } from '../sync/helpers.ts';
import { peerSatelliteConfig, peersStatus } from '../peers/helpers.ts';
import { metricsUrl, parseMetrics, promtoolCheck, scrape, value } from './helpers.ts';

const P = 'harbor_satellite_';

test('peers metrics: bytes one satellite of a site received are the bytes the other served, as the status shows', async (t) => {
  const registry = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const layers = [];
  for (let i = 0; i < 6; i++) layers.push(await makeLayer(`metrics-peers-${i}`, 400_000, { dir: layout }));
  await writeImage(layout, { tag: 'v1', layers, platform: { os: 'linux', architecture: 'amd64' } });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${registry.host}/site/app:v1`);

  const desired = join(await makeTempDir(t, 'hs-desired-'), 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: registry.url }, images: [] });
  const ports = [await freePort(), await freePort()];
  const members = ports.map((p) => ({ url: `http://127.0.0.1:${p}` }));
  const sats = await Promise.all(ports.map((port) => startSatellite(t, { config: peerSatelliteConfig(desired, port, { static: members, token: 'site-secret-0123456789' }) })));
  const urls = await Promise.all(sats.map(metricsUrl));
  await Promise.all(sats.map((s) => waitForGeneration(s, 1)));
  await writeDesired(desired, { generation: 2, upstream: { url: registry.url }, images: [{ repository: 'site/app', tags: ['v1'] }] });
  await Promise.all(sats.map((s) => waitForGeneration(s, 2, 120_000)));

  const texts = await Promise.all(urls.map((u) => scrape(u)));
  for (const text of texts) await promtoolCheck(text);
  const m = texts.map(parseMetrics);
  const status = await Promise.all(sats.map(peersStatus));
  for (const [i, s] of status.entries()) {
    assert.equal(value(m[i]!, `${P}peers_members`), 1);
    assert.equal(value(m[i]!, `${P}peers_received_bytes_total`), s.peers.reduce((n, p) => n + p.bytesReceived, 0));
    assert.equal(value(m[i]!, `${P}peers_served_bytes_total`), s.bytesServed);
    assert.equal(value(m[i]!, `${P}peers_bad_digests_total`), 0);
  }
  const received = m.reduce((n, x) => n + value(x, `${P}peers_received_bytes_total`), 0);
  const served = m.reduce((n, x) => n + value(x, `${P}peers_served_bytes_total`), 0);
  t.diagnostic(`peers received ${received} bytes, served ${served}`);
  assert.ok(received >= 400_000, 'at least one layer crossed the LAN instead of the WAN');
  assert.equal(received, served, 'what one received the other served');
  assert.ok(m.some((x) => (x.get(`${P}registry_requests_total{operation="peer",status_class="2xx"}`) ?? 0) > 0), 'peer requests are counted as operation "peer"');
  assert.ok(![...m[0]!.keys()].some((k) => k.includes('127.0.0.1')), 'no per-peer labels');
});

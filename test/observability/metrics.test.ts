import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { startSatellite, spawnSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { freePort } from '../helpers/ports.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { getStatus, syncConfig, waitForGeneration, writeDesired } from '../sync/helpers.ts';
import { metricsUrl, parseMetrics, promtoolCheck, scrape, scrapeUntil, value } from './helpers.ts';

const P = 'harbor_satellite_';

test('metrics follow a real sync, a proxy miss, a cache hit and a pull; promtool accepts the exposition', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const synced = await makeImage(layout, { tag: 'synced', seed: 'metrics-sync', layerSizes: [300_000, 200_000] });
  const proxied = await makeImage(layout, { tag: 'proxied', seed: 'metrics-proxy', layerSizes: [400_000] });
  await skopeoCopy(`oci:${layout}:synced`, `docker://${upstream.host}/apps/synced:v1`);
  await skopeoCopy(`oci:${layout}:proxied`, `docker://${upstream.host}/apps/proxied:v1`);
  const syncedBytes = synced.config.length + synced.layers.reduce((n, l) => n + l.size, 0);
  const proxiedLayerBytes = proxied.layers.reduce((n, l) => n + l.size, 0);

  const desired = join(await makeTempDir(t, 'hs-desired-'), 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: upstream.url }, images: [{ repository: 'apps/synced', tags: ['v1'] }] });
  const sat = await startSatellite(t, {
    config: { ...syncConfig(desired), proxy: { enabled: true, upstream: { url: upstream.url }, cacheQuotaBytes: 64 * 1024 * 1024 } },
  });
  const url = await metricsUrl(sat);
  await waitForGeneration(sat, 1);

  // After the sync: one ok run, the image ok, its blobs and bytes from the upstream.
  const text1 = await scrape(url);
  await promtoolCheck(text1);
  const m1 = parseMetrics(text1);
  assert.ok(value(m1, `${P}sync_runs_total{result="ok"}`) >= 1);
  assert.equal(value(m1, `${P}sync_runs_total{result="failed"}`), 0);
  assert.equal(value(m1, `${P}sync_images{state="ok"}`), 1);
  assert.equal(value(m1, `${P}sync_images{state="failed"}`), 0);
  assert.equal(value(m1, `${P}sync_desired_generation`), 1);
  assert.equal(value(m1, `${P}sync_applied_generation`), 1);
  assert.equal(value(m1, `${P}sync_blobs_fetched_total`), 3);
  assert.ok(value(m1, `${P}sync_upstream_bytes_total`) >= syncedBytes, 'bytes from the upstream cover config and layers');
  assert.ok(value(m1, `${P}sync_metered_bytes{period="day"}`) >= syncedBytes);
  assert.equal(value(m1, `${P}sync_paused`), 0);
  assert.ok(value(m1, `${P}store_blobs`) >= 3, 'config and two layers');
  assert.ok(value(m1, `${P}store_bytes`) >= syncedBytes);
  assert.ok(value(m1, `${P}disk_total_bytes`) > value(m1, `${P}disk_free_bytes`));
  assert.ok(value(m1, `${P}disk_free_bytes`) > 0);
  assert.equal(value(m1, `${P}proxy_cache_quota_bytes`), 64 * 1024 * 1024);
  assert.equal(value(m1, `${P}proxy_misses_total{kind="blob"}`), 0);
  // prom-client's process and event-loop metrics, under the same prefix.
  assert.ok(value(m1, `${P}process_resident_memory_bytes`) > 10 * 1024 * 1024);
  assert.ok(m1.has(`${P}nodejs_eventloop_lag_seconds`));
  assert.ok(m1.has(`${P}build_info{version="${(await getStatus(sat)).version}"}`));
  // The status endpoint reads the same totals.
  const status = (await (await fetch(`${sat.url}/_satellite/status`)).json()) as { syncTotals: { bytesFromUpstream: number; blobsFetched: number } };
  assert.equal(status.syncTotals.bytesFromUpstream, value(m1, `${P}sync_upstream_bytes_total`));
  assert.equal(status.syncTotals.blobsFetched, value(m1, `${P}sync_blobs_fetched_total`));

  // A device pulls the synced image: registry requests, durations and bytes served move.
  await skopeoCopy(`docker://${sat.host}/apps/synced:v1`, `oci:${await makeTempDir(t, 'hs-pull-')}:v1`);
  // A response is counted when the server sees it end, a moment after the client has its bytes.
  const m2 = await scrapeUntil(url, (m) => (m.get(`${P}registry_requests_total{operation="blob_get",status_class="2xx"}`) ?? 0) >= 3);
  assert.ok(value(m2, `${P}registry_requests_total{operation="manifest_get",status_class="2xx"}`) >= 1);
  assert.ok(value(m2, `${P}registry_requests_total{operation="blob_get",status_class="2xx"}`) >= 3);
  assert.ok(value(m2, `${P}registry_sent_bytes_total{operation="blob_get"}`) >= syncedBytes);
  assert.ok(value(m2, `${P}registry_request_duration_seconds_count{operation="blob_get"}`) >= 3);
  assert.equal(
    value(m2, `${P}registry_request_duration_seconds_bucket{le="+Inf",operation="blob_get"}`),
    value(m2, `${P}registry_request_duration_seconds_count{operation="blob_get"}`),
  );
  // No label carries a repository or digest.
  assert.ok(![...m2.keys()].some((k) => k.includes('apps/') || k.includes('sha256:')), 'no per-repository or per-digest labels');

  // A proxy miss: the image is not in the desired state, so the cache fetches it from the upstream.
  await skopeoCopy(`docker://${sat.host}/apps/proxied:v1`, `oci:${await makeTempDir(t, 'hs-pull-')}:v1`);
  const m3 = parseMetrics(await scrape(url));
  assert.equal(value(m3, `${P}proxy_misses_total{kind="blob"}`), 2, 'config and layer');
  assert.ok(value(m3, `${P}proxy_misses_total{kind="manifest"}`) >= 1);
  assert.ok(value(m3, `${P}proxy_upstream_bytes_total`) >= proxiedLayerBytes);
  assert.ok(value(m3, `${P}proxy_cache_bytes`) >= proxiedLayerBytes);
  assert.equal(value(m3, `${P}proxy_cache_served_bytes_total`), 0, 'nothing served from the cache yet');
  assert.equal(value(m3, `${P}sync_blobs_fetched_total`), 3, 'the proxy does not count as sync');

  // The same pull again: hits, and the layer bytes come from the cache (WAN bytes saved).
  await skopeoCopy(`docker://${sat.host}/apps/proxied:v1`, `oci:${await makeTempDir(t, 'hs-pull-')}:v1`);
  const m4 = await scrapeUntil(url, (m) => (m.get(`${P}proxy_cache_served_bytes_total`) ?? 0) >= proxiedLayerBytes);
  assert.equal(value(m4, `${P}proxy_misses_total{kind="blob"}`), 2, 'no new blob miss');
  assert.ok(value(m4, `${P}proxy_hits_total{kind="blob"}`) >= 2);
  assert.ok(value(m4, `${P}proxy_cache_served_bytes_total`) >= proxiedLayerBytes);
  assert.equal(value(m4, `${P}proxy_upstream_bytes_total`), value(m3, `${P}proxy_upstream_bytes_total`), 'no blob bytes crossed the WAN again');
  await promtoolCheck(await scrape(url));
  const times: number[] = [];
  let size = 0;
  for (let i = 0; i < 9; i++) {
    const started = performance.now();
    size = (await scrape(url)).length;
    times.push(performance.now() - started);
  }
  t.diagnostic(`scrape: median ${times.sort((a, b) => a - b)[4]!.toFixed(1)} ms, ${size} bytes, ${[...m4.keys()].length} samples`);
});

test('metrics config errors exit 78: a non-loopback address without a token (nothing listens), an unreadable token file', async (t) => {
  const port = await freePort();
  const sat = await spawnSatellite(t, { config: { metrics: { listen: { host: '0.0.0.0', port } } } });
  const exit = await sat.proc.exited;
  assert.equal(exit.code, 78);
  assert.match(sat.logs(), /\/metrics\/listen\/host: 0\.0\.0\.0 is not a loopback address; set \/metrics\/token/);
  await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`), /fetch failed/);

  const missing = await spawnSatellite(t, { config: { metrics: { tokenFile: '/nonexistent/metrics.token' } } });
  assert.equal((await missing.proc.exited).code, 78);
  assert.match(missing.logs(), /metrics\.tokenFile: cannot read \/nonexistent\/metrics\.token/);
});

test('a configured token is required on every scrape (bearer or basic); disabled metrics do not listen', async (t) => {
  const token = 'metrics-token-0123456789abcdef';
  const dir = await makeTempDir(t, 'hs-metrics-token-');
  await writeFile(join(dir, 'metrics.token'), `${token}\n`, { mode: 0o600 });
  const sat = await startSatellite(t, { config: { metrics: { tokenFile: join(dir, 'metrics.token') } } });
  const url = await metricsUrl(sat);

  const none = await fetch(url);
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer /);
  assert.doesNotMatch(await none.text(), new RegExp(P));
  const wrong = await fetch(url, { headers: { Authorization: `Bearer ${token}x` } });
  assert.equal(wrong.status, 401);
  await wrong.body?.cancel();
  const text = await scrape(url, { Authorization: `Bearer ${token}` });
  assert.match(text, /^harbor_satellite_store_blobs 0$/m);
  const basic = await scrape(url, { Authorization: `Basic ${Buffer.from(`prometheus:${token}`).toString('base64')}` });
  assert.match(basic, /harbor_satellite_registry_requests_total/);
  // Only /metrics is served there; the registry's port serves no metrics.
  assert.equal((await fetch(url.replace('/metrics', '/'), { headers: { Authorization: `Bearer ${token}` } })).status, 404);
  assert.equal((await fetch(`${sat.url}/metrics`)).status, 404);

  const port = await freePort();
  const off = await startSatellite(t, { config: { metrics: { enabled: false, listen: { host: '127.0.0.1', port } } } });
  await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`), /fetch failed/);
  assert.doesNotMatch(off.logs(), /metrics listening/);
});

test('a metrics port already taken is logged and the satellite serves devices anyway', async (t) => {
  const squatter = createServer();
  squatter.listen(0, '127.0.0.1');
  await once(squatter, 'listening');
  t.after(() => squatter.close());
  const port = (squatter.address() as { port: number }).port;
  const sat = await startSatellite(t, { config: { metrics: { listen: { host: '127.0.0.1', port } } } });
  assert.match(sat.logs(), /"msg":"metrics cannot listen; the satellite runs without its metrics endpoint"/);
  const res = await fetch(`${sat.url}/v2/`);
  assert.equal(res.status, 200);
  await res.body?.cancel();
});

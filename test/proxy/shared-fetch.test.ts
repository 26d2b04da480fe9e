import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { NODE_FLAGS, RUNTIME_ENV } from '../../scripts/release/runtime.ts';
import { blobFile, fetchHash, getStatus, hashFile, MiB, proxyConfig, startThrottle, waitFor } from './helpers.ts';

/** Access-log lines of docker-registry for GETs of one blob. */
function blobGets(logs: string, digest: string): number {
  return logs.split('\n').filter((l) => l.includes(`"GET /v2/`) && l.includes(`/blobs/${digest}`)).length;
}

test('20 concurrent pulls of one uncached 100 MB blob: one upstream fetch, 20 correct bodies', async (t) => {
  const upstream = await startDockerRegistry(t, { accessLog: true });
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'proxy-shared-100', layerSizes: [100 * MiB] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/big/one:v1`);
  const link = await startFaultProxy(t, { target: upstream.host });
  // The shipped runtime settings: with Node's default 16 MiB young generation the RSS figure below
  // measures when V8 last collected, not what the fill holds.
  const sat = await startSatellite(t, { config: proxyConfig(link.url), nodeArgs: [...NODE_FLAGS.satellite], env: { ...RUNTIME_ENV.satellite } });

  // The upstream client (undici) is loaded on the first miss: a manifest miss loads it before the
  // baseline, so the figure below is the blob fan-out's memory, not module code.
  const warm = await fetch(`${sat.url}/v2/big/one/manifests/v1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(warm.status, 200);
  await warm.arrayBuffer();
  const before = link.bytesFromTarget();
  const rssBefore = ((await getStatus(sat)) as unknown as { process: { rss: number } }).process.rss;
  const started = Date.now();
  const results = await Promise.all(Array.from({ length: 20 }, () => fetchHash(`${sat.url}/v2/big/one/blobs/${layer.digest}`)));
  const ms = Date.now() - started;
  for (const r of results) {
    assert.equal(r.status, 200, r.error);
    assert.equal(r.digest, layer.digest);
    assert.equal(r.bytes, layer.size);
  }
  const fromUpstream = link.bytesFromTarget() - before;
  t.diagnostic(`20 x ${layer.size} bytes served in ${ms} ms; ${fromUpstream} bytes read from the upstream (${(fromUpstream / layer.size).toFixed(3)}x)`);
  assert.ok(fromUpstream < layer.size * 1.01, `${fromUpstream} bytes from upstream for one ${layer.size}-byte blob`);
  await waitFor('the access log line and the commit', async () => (blobGets(upstream.logs(), layer.digest) >= 1 && (await getStatus(sat)).store.blobs === 1 ? true : undefined), 5000);
  assert.equal(blobGets(upstream.logs(), layer.digest), 1, 'exactly one upstream GET of the blob');
  const status = await getStatus(sat);
  assert.equal(status.proxy.blobMisses, 1);
  assert.equal(status.proxy.fetchesJoined, 19);
  const rssAfter = (status as unknown as { process: { rss: number } }).process.rss;
  t.diagnostic(`satellite RSS ${Math.round(rssBefore / MiB)} MiB before, ${Math.round(rssAfter / MiB)} MiB after`);
  // One chunk per client, never a whole 100 MB blob in memory.
  assert.ok(rssAfter - rssBefore < 64 * MiB, `RSS grew by ${Math.round((rssAfter - rssBefore) / MiB)} MiB`);
  assert.equal(await hashFile(blobFile(sat.dataDir, layer.digest)), layer.digest);

  // A late joiner reads the committed file: still one upstream GET.
  const late = await fetchHash(`${sat.url}/v2/big/one/blobs/${layer.digest}`);
  assert.equal(late.digest, layer.digest);
  assert.equal(blobGets(upstream.logs(), layer.digest), 1);
});

test('a corrupting upstream: the client connection is cut, nothing is stored, the next request fetches again', async (t) => {
  const upstream = await startDockerRegistry(t, { accessLog: true });
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'proxy-corrupt', layerSizes: [4 * MiB] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/bad/bytes:v1`);
  // The blob request is the satellite's first upstream connection: byte 1 MiB is inside its body.
  const link = await startFaultProxy(t, { target: upstream.host, flipByteAt: MiB });
  const sat = await startSatellite(t, { config: proxyConfig(link.url) });

  const bad = await Promise.all([1, 2, 3].map(() => fetchHash(`${sat.url}/v2/bad/bytes/blobs/${layer.digest}`)));
  for (const r of bad) {
    assert.equal(r.status, -1, `the response must break, got ${JSON.stringify(r)}`);
    assert.ok(r.bytes < layer.size, `received ${r.bytes} of ${layer.size}: the last byte must be held back`);
  }
  assert.equal(link.connections(), 1);
  const s1 = await waitFor('the failed fetch', async () => {
    const s = await getStatus(sat);
    return s.proxy.fetchesFailed === 1 && s.proxy.inFlight === 0 ? s : undefined;
  });
  assert.equal(s1.proxy.blobMisses, 1);
  assert.equal(s1.store.blobs, 0, 'nothing committed');
  assert.match(sat.logs(), /hash to sha256:/);
  link.setFlipByteAt(undefined);
  const good = await fetchHash(`${sat.url}/v2/bad/bytes/blobs/${layer.digest}`);
  assert.equal(good.status, 200);
  assert.equal(good.digest, layer.digest);
  // The last byte goes out once verified; the commit follows.
  const s2 = await waitFor('the commit', async () => {
    const s = await getStatus(sat);
    return s.store.blobs === 1 ? s : undefined;
  });
  assert.equal(s2.proxy.blobMisses, 2, 'fetched again after the failure');
  assert.equal(await hashFile(blobFile(sat.dataDir, layer.digest)), layer.digest);
});

test('a client that leaves does not stop the fill; ranges and HEAD are served from the same fetch', async (t) => {
  const upstream = await startDockerRegistry(t, { accessLog: true });
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'proxy-leave', layerSizes: [40 * MiB] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/leave/me:v1`);
  // A 20 MB/s link: the fill takes ~2 s, so the clients below act while it runs.
  const link = await startThrottle(t, upstream.host, 20 * MiB);
  const sat = await startSatellite(t, { config: proxyConfig(link.url) });
  const url = `${sat.url}/v2/leave/me/blobs/${layer.digest}`;

  const head = await fetch(url, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-length'), String(layer.size));
  // The first client reads 1 MiB and hangs up.
  const ctrl = new AbortController();
  const res = await fetch(url, { signal: ctrl.signal });
  const reader = res.body!.getReader();
  let got = 0;
  while (got < MiB) got += (await reader.read()).value!.length;
  ctrl.abort();
  assert.equal((await getStatus(sat)).proxy.inFlight, 1, 'the fill still runs after the client left');
  // A range from the middle, while (or after) the fill runs.
  const ranged = await fetch(url, { headers: { range: `bytes=${20 * MiB}-${20 * MiB + 99}` } });
  assert.equal(ranged.status, 206);
  const part = Buffer.from(await ranged.arrayBuffer());
  const { readFile } = await import('node:fs/promises');
  const original = await readFile(layer.path);
  assert.deepEqual(part, original.subarray(20 * MiB, 20 * MiB + 100));

  await waitFor('the fill to commit', async () => ((await getStatus(sat)).store.blobs === 1 ? true : undefined));
  assert.equal(await hashFile(blobFile(sat.dataDir, layer.digest)), layer.digest);
  const again = await fetchHash(url);
  assert.equal(again.digest, layer.digest);
  assert.equal(blobGets(upstream.logs(), layer.digest), 1, 'one upstream GET for HEAD, a client that left, a range and a late GET');
  const s = await getStatus(sat);
  assert.equal(s.proxy.blobMisses, 1);
  assert.equal(s.proxy.fetchesFailed, 0);
});

test('an upstream that stalls mid-blob: resumes get no answer either, clients are cut after the idle + first-byte deadlines', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'proxy-stall', layerSizes: [20 * MiB] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/stall/me:v1`);
  const link = await startThrottle(t, upstream.host, 10 * MiB);
  const sat = await startSatellite(t, { config: proxyConfig(link.url, { idleTimeoutMs: 1000, firstByteTimeoutMs: 1000 }) });
  const url = `${sat.url}/v2/stall/me/blobs/${layer.digest}`;

  const res = await fetch(url);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  let got = 0;
  while (got < 2 * MiB) got += (await reader.read()).value!.length;
  link.stall(true);
  const stalledAt = Date.now();
  let broke = false;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      got += r.value.length;
    }
  } catch {
    broke = true;
  }
  const ms = Date.now() - stalledAt;
  t.diagnostic(`stalled upstream: client cut after ${ms} ms with ${got} of ${layer.size} bytes`);
  assert.ok(broke, 'the response must break, not end');
  assert.ok(got < layer.size);
  assert.ok(ms < 5000, `client held ${ms} ms`);
  const s = await waitFor('the failed fill', async () => {
    const st = await getStatus(sat);
    return st.proxy.fetchesFailed === 1 ? st : undefined;
  });
  assert.equal(s.store.blobs, 0);
  assert.equal(s.proxy.upstreamResumes, 0, 'no resume was answered');
  assert.match(sat.logs(), /upstream cut mid-blob; resuming/);
  link.stall(false);
  const again = await fetchHash(url);
  assert.equal(again.digest, layer.digest);
});

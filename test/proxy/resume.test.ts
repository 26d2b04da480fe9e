import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { blobFile, fetchHash, getStatus, hashFile, layoutDigests, MiB, proxyConfig, startRangeStripper, startThrottle, waitFor } from './helpers.ts';

/** Access-log lines of docker-registry for GETs of one blob, and how many of them asked a Range. */
function blobGets(logs: string, digest: string): string[] {
  return logs.split('\n').filter((l) => l.includes(`"GET /v2/`) && l.includes(`/blobs/${digest}`));
}

test('a link cut every 16 MB: 3 concurrent clients of an uncached 100 MB blob complete from one fill that resumes', async (t) => {
  const upstream = await startDockerRegistry(t, { accessLog: true });
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'proxy-resume-100', layerSizes: [100 * MiB] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/cut/big:v1`);
  const link = await startFaultProxy(t, { target: upstream.host, cutEveryBytes: 16 * MiB });
  const sat = await startSatellite(t, { config: proxyConfig(link.url) });

  const before = link.bytesFromTarget();
  const started = Date.now();
  const results = await Promise.all([1, 2, 3].map(() => fetchHash(`${sat.url}/v2/cut/big/blobs/${layer.digest}`)));
  const ms = Date.now() - started;
  for (const r of results) {
    assert.equal(r.status, 200, r.error);
    assert.equal(r.bytes, layer.size);
    assert.equal(r.digest, layer.digest, 'each client saw one unbroken, correct response');
  }
  const wan = link.bytesFromTarget() - before;
  const s = await waitFor('the commit', async () => {
    const st = await getStatus(sat);
    return st.store.blobs === 1 && st.proxy.inFlight === 0 ? st : undefined;
  });
  t.diagnostic(`3 x ${layer.size} bytes in ${ms} ms over a link cut every 16 MiB: ${link.cuts()} cuts, ${s.proxy.upstreamResumes} resumes, ${wan} bytes read (${(wan / layer.size).toFixed(4)}x)`);
  assert.ok(wan <= layer.size * 1.05, `${wan} bytes read through the link for a ${layer.size}-byte blob`);
  assert.ok(link.cuts() >= 6, `${link.cuts()} cuts`);
  assert.ok(s.proxy.upstreamResumes >= 6, `${s.proxy.upstreamResumes} resumes counted`);
  assert.equal(s.proxy.blobMisses, 1, 'one fill');
  assert.equal(s.proxy.fetchesJoined, 2);
  assert.equal(s.proxy.fetchesFailed, 0);
  const gets = blobGets(upstream.logs(), layer.digest);
  assert.equal(gets.length, 1 + s.proxy.upstreamResumes, 'one GET, then one per resume');
  assert.equal(await hashFile(blobFile(sat.dataDir, layer.digest)), layer.digest);
});

test('skopeo pulls an uncached two-layer 100 MB image through the proxy over a link cut every 16 MB', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'proxy-resume-skopeo', layerSizes: [60 * MiB, 40 * MiB] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/cut/image:v1`);
  const link = await startFaultProxy(t, { target: upstream.host, cutEveryBytes: 16 * MiB });
  const sat = await startSatellite(t, { config: proxyConfig(link.url) });

  const before = link.bytesFromTarget();
  const out = await makeTempDir(t, 'hs-pull-');
  await skopeoCopy(`docker://${sat.host}/cut/image:v1`, `oci:${out}:v1`);
  const got = await layoutDigests(out);
  assert.equal(got.manifest, img.manifestDigest);
  assert.deepEqual(got.blobs, [img.configDigest, ...img.layerDigests]);
  const size = img.layers.reduce((a, l) => a + l.size, 0) + img.config.length + img.manifest.length;
  const wan = link.bytesFromTarget() - before;
  const s = await getStatus(sat);
  t.diagnostic(`skopeo pull of ${size} bytes: ${link.cuts()} cuts, ${s.proxy.upstreamResumes} resumes, ${wan} bytes read (${(wan / size).toFixed(4)}x)`);
  assert.ok(wan <= size * 1.05, `${wan} bytes for a ${size}-byte image`);
  assert.ok(s.proxy.upstreamResumes >= 5, `${s.proxy.upstreamResumes} resumes`);
  assert.equal(s.proxy.fetchesFailed, 0);
  for (const d of img.layerDigests) assert.equal(await hashFile(blobFile(sat.dataDir, d)), d);
});

test('a link that dies mid-blob: the fill gives up after proxy.resumeAttempts, clients are cut, nothing stored; after the link returns it succeeds', async (t) => {
  const upstream = await startDockerRegistry(t, { accessLog: true });
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'proxy-resume-dead', layerSizes: [40 * MiB] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/dead/link:v1`);
  // 20 MB/s so the link can be taken down while the fill runs.
  const slow = await startThrottle(t, upstream.host, 20 * MiB);
  const link = await startFaultProxy(t, { target: slow.url.slice('http://'.length) });
  const sat = await startSatellite(t, { config: proxyConfig(link.url, { resumeAttempts: 3 }) });
  const url = `${sat.url}/v2/dead/link/blobs/${layer.digest}`;

  const clients = [1, 2, 3].map(() => fetchHash(url));
  await waitFor('8 MiB into the fill', async () => (link.bytesFromTarget() >= 8 * MiB ? true : undefined));
  link.pause('reset');
  const downAt = Date.now();
  const results = await Promise.all(clients);
  const ms = Date.now() - downAt;
  t.diagnostic(`link down: clients cut after ${ms} ms with ${results.map((r) => r.bytes).join(', ')} of ${layer.size} bytes`);
  for (const r of results) {
    assert.equal(r.status, -1, `the response must break, never end cleanly: ${JSON.stringify(r)}`);
    assert.ok(r.bytes < layer.size);
  }
  // 3 attempts, the first at once (the cut came after progress), then 100 + 200 ms backoff, each refused at once.
  assert.ok(ms >= 300, `cut after ${ms} ms: the fill did not try to resume`);
  assert.ok(ms < 10_000, `clients held ${ms} ms on a dead link`);
  const s = await waitFor('the failed fill', async () => {
    const st = await getStatus(sat);
    return st.proxy.fetchesFailed === 1 && st.proxy.inFlight === 0 ? st : undefined;
  });
  assert.equal(s.store.blobs, 0, 'nothing stored');
  assert.equal(s.proxy.upstreamResumes, 0);
  assert.match(sat.logs(), /3 resume attempts in a row without progress/);
  // The bytes that crossed the link are kept in the blob's partial file for the next request.
  assert.equal((await readdir(join(sat.dataDir, 'partial'))).length, 1, 'the partial is kept');
  const fromLink = link.bytesFromTarget();

  link.resume();
  const again = await fetchHash(url);
  assert.equal(again.status, 200, again.error);
  assert.equal(again.digest, layer.digest);
  await waitFor('the commit', async () => ((await getStatus(sat)).store.blobs === 1 ? true : undefined));
  assert.equal(await hashFile(blobFile(sat.dataDir, layer.digest)), layer.digest);
  const refetched = link.bytesFromTarget() - fromLink;
  assert.ok(refetched < layer.size - 4 * MiB, `the next fill read ${refetched} bytes: it must resume from the kept bytes`);
});

test('an upstream that ignores Range: a cut fill with clients fails (never other bytes at an offset), an unsent one starts over only once', async (t) => {
  const upstream = await startDockerRegistry(t, { accessLog: true });
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'proxy-resume-norange', layerSizes: [8 * MiB] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/no/range:v1`);
  const stripper = await startRangeStripper(t, upstream.host);
  const link = await startFaultProxy(t, { target: stripper.host, cutEveryBytes: 3 * MiB });
  const sat = await startSatellite(t, { config: proxyConfig(link.url) });
  const url = `${sat.url}/v2/no/range/blobs/${layer.digest}`;

  const cut = await fetchHash(url);
  assert.equal(cut.status, -1, `the response must break: ${JSON.stringify(cut)}`);
  assert.ok(cut.bytes < layer.size);
  const s1 = await waitFor('the failed fill', async () => {
    const st = await getStatus(sat);
    return st.proxy.fetchesFailed === 1 && st.proxy.inFlight === 0 ? st : undefined;
  });
  assert.equal(s1.store.blobs, 0);
  assert.match(sat.logs(), /upstream ignored Range/);

  // Started by a HEAD, nobody was sent a byte: it starts over once, is cut again, and gives up.
  const head = await fetch(url, { method: 'HEAD' });
  assert.equal(head.status, 200);
  const s2 = await waitFor('the second failed fill', async () => {
    const st = await getStatus(sat);
    return st.proxy.fetchesFailed === 2 && st.proxy.inFlight === 0 ? st : undefined;
  });
  assert.equal(s2.store.blobs, 0);
  assert.match(sat.logs(), /upstream ignored Range; the fill starts over/);
  assert.match(sat.logs(), /again after starting over/);

  link.setCutEveryBytes(undefined);
  const good = await fetchHash(url);
  assert.equal(good.status, 200, good.error);
  assert.equal(good.digest, layer.digest);
  await waitFor('the commit', async () => ((await getStatus(sat)).store.blobs === 1 ? true : undefined));
  assert.equal(await hashFile(blobFile(sat.dataDir, layer.digest)), layer.digest);
});

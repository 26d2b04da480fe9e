import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startFaultProxy, type SeenRequest } from '../helpers/fault-proxy.ts';
import { startTokenIssuer } from '../helpers/token-issuer.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { syncConfig, waitForGeneration, writeDesired } from './helpers.ts';

const KiB = 1024;
const IMAGES = 6;
const PLAN_CONCURRENCY = 2;

const isManifest = (path: string) => path.includes('/manifests/');
const peakManifestsInFlight = (seen: SeenRequest[]) => Math.max(0, ...seen.map((r) => r.inFlight.filter(isManifest).length));
const lines = (seen: SeenRequest[]) => seen.map((r) => `${r.method} ${r.path} (conn ${r.connection}, ${r.inFlight.length} in flight)`).join('\n');

test('over a long link: bounded concurrent planning, downloads start before the plan ends, an unchanged tag costs one conditional GET on a reused connection', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const repos: string[] = [];
  for (let i = 0; i < IMAGES; i++) {
    await makeImage(layout, { tag: `i${i}`, seed: `long-links-${i}`, layerSizes: [64 * KiB + i] });
    const repo = `wan/img${i}`;
    await skopeoCopy(`oci:${layout}:i${i}`, `docker://${upstream.host}/${repo}:v1`);
    repos.push(repo);
  }
  // 40 ms each way: requests that were concurrent overlap in the relay, sequential ones do not.
  const proxy = await startFaultProxy(t, { target: upstream.host, delayMs: 40 });
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  const doc = (generation: number) => ({ generation, upstream: { url: proxy.url }, images: repos.map((repository) => ({ repository, tags: ['v1'] })) });
  await writeDesired(desired, doc(1));
  const sat = await startSatellite(t, { config: syncConfig(desired, { planConcurrency: PLAN_CONCURRENCY }) });
  const first = await waitForGeneration(sat, 1, 120_000);
  assert.equal(first.sync.lastRun!.result, 'ok');

  // First run: at most planConcurrency manifest requests at once, and more than one (concurrent).
  const run1 = proxy.requests();
  t.diagnostic(`first run: ${run1.length} requests on ${proxy.connections()} connections, peak ${peakManifestsInFlight(run1)} manifests in flight`);
  assert.ok(peakManifestsInFlight(run1) <= PLAN_CONCURRENCY, lines(run1));
  assert.ok(peakManifestsInFlight(run1) >= 2, `manifests were fetched one after another:\n${lines(run1)}`);
  // Pipelined: a blob download went out before the last manifest request.
  const firstBlob = run1.findIndex((r) => r.path.includes('/blobs/'));
  const lastManifest = run1.findLastIndex((r) => isManifest(r.path));
  assert.ok(firstBlob >= 0 && firstBlob < lastManifest, `blobs waited for the whole plan:\n${lines(run1)}`);
  // Never a HEAD and then a GET of the same manifest; nothing conditional on a first sync.
  assert.equal(run1.filter((r) => r.method === 'HEAD' || r.conditional).length, 0, lines(run1));

  // Second run, nothing moved: one conditional GET per tag (304, no body), nothing else (no /v2/
  // probe, no blob), on the connections the first run opened.
  proxy.clearRequests();
  const connectionsBefore = proxy.connections();
  const bytesBefore = proxy.bytesFromTarget();
  await writeDesired(desired, doc(2));
  const second = await waitForGeneration(sat, 2, 60_000);
  const run2 = proxy.requests();
  const bytes2 = proxy.bytesFromTarget() - bytesBefore;
  t.diagnostic(`unchanged run: ${run2.length} requests, ${bytes2} bytes, ${proxy.connections() - connectionsBefore} new connections, resolveMs ${second.sync.lastRun!.resolveMs}`);
  assert.equal(second.sync.lastRun!.result, 'ok');
  assert.equal(second.sync.lastRun!.unchanged, IMAGES);
  assert.equal(second.sync.lastRun!.blobsFetched, 0);
  assert.equal(typeof second.sync.lastRun!.resolveMs, 'number');
  assert.deepEqual(
    run2.map((r) => `${r.method} ${r.path}`).sort(),
    repos.map((repo) => `GET /v2/${repo}/manifests/v1`).sort(),
    lines(run2),
  );
  assert.ok(run2.every((r) => r.conditional), lines(run2));
  // 304s: headers only, no manifest bodies.
  assert.ok(bytes2 < IMAGES * 600, `${bytes2} bytes for ${IMAGES} unchanged tags`);
  assert.equal(proxy.connections(), connectionsBefore, `new connections were opened:\n${lines(run2)}`);

  // A tag that moved: its conditional GET returns the new manifest, then its new blobs; the others 304.
  const moved = await makeImage(layout, { tag: 'moved', seed: 'long-links-moved', layerSizes: [32 * KiB] });
  await skopeoCopy(`oci:${layout}:moved`, `docker://${upstream.host}/${repos[0]}:v1`);
  proxy.clearRequests();
  await writeDesired(desired, doc(3));
  const third = await waitForGeneration(sat, 3, 60_000);
  const run3 = proxy.requests();
  assert.equal(third.sync.lastRun!.result, 'ok');
  assert.equal(third.sync.lastRun!.unchanged, IMAGES - 1);
  assert.equal(third.sync.lastRun!.blobsFetched, 2);
  const manifestRequests = run3.filter((r) => isManifest(r.path)).map((r) => `${r.method} ${r.path}`).sort();
  assert.deepEqual(manifestRequests, repos.map((repo) => `GET /v2/${repo}/manifests/v1`).sort(), lines(run3));
  assert.ok(run3.filter((r) => r.path.includes('/blobs/')).every((r) => r.path.startsWith(`/v2/${repos[0]}/`)), lines(run3));
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/${repos[0]}:v1`, { raw: true })), moved.manifestDigest);
});

test('WAN relay: delay and a shared rate slow the link as configured', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'wan-rate', layerSizes: [512 * KiB] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/wan/rate:v1`);
  const proxy = await startFaultProxy(t, { target: upstream.host, delayMs: 100, rateBytesPerSec: 1024 * KiB });
  const layer = img.layers[0]!;
  const started = performance.now();
  const res = await fetch(`${proxy.url}/v2/wan/rate/blobs/${layer.digest}`);
  const body = Buffer.from(await res.arrayBuffer());
  const ms = performance.now() - started;
  assert.equal(res.status, 200);
  assert.equal(sha256(body), layer.digest);
  t.diagnostic(`${body.length} bytes through 100 ms each way at 1 MiB/s: ${ms.toFixed(0)} ms`);
  // At least one round trip (200 ms) plus half a second of transfer; generous above.
  assert.ok(ms >= 650, `${ms} ms`);
  assert.ok(ms < 5000, `${ms} ms`);
});

test('token auth: one token request carries the pull scopes of every repository of the run', async (t) => {
  const robot = 'robot$edge+wan';
  const issuer = await startTokenIssuer(t, { users: { [robot]: 'r0b0t' } });
  const upstream = await startDockerRegistry(t, { token: issuer });
  const layout = await makeTempDir(t, 'hs-fixture-');
  const repos = ['wan/a', 'wan/b', 'wan/c', 'wan/d'];
  for (const [i, repo] of repos.entries()) {
    await makeImage(layout, { tag: `t${i}`, seed: `long-links-token-${i}`, layerSizes: [16 * KiB + i] });
    await skopeoCopy(`oci:${layout}:t${i}`, `docker://${upstream.host}/${repo}:v1`, { destCreds: `${robot}:r0b0t` });
  }
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, {
    generation: 1,
    upstream: { url: upstream.url, username: robot, password: 'r0b0t' },
    images: repos.map((repository) => ({ repository, tags: ['v1'] })),
  });
  const before = issuer.log().length;
  const sat = await startSatellite(t, { config: syncConfig(desired) });
  const status = await waitForGeneration(sat, 1, 60_000);
  assert.equal(status.sync.lastRun!.result, 'ok');
  const requests = issuer.log().slice(before);
  const summary = requests.map((r) => `${r.status} [${r.scopes.join(' ')}]`).join('\n');
  t.diagnostic(`token requests:\n${summary}`);
  // The /v2/ probe's token (no scope), then one request for the four pull scopes.
  const batched = requests.filter((r) => r.scopes.length === repos.length);
  assert.equal(batched.length, 1, summary);
  assert.deepEqual([...batched[0]!.scopes].sort(), repos.map((r) => `repository:${r}:pull`).sort());
  assert.ok(batched[0]!.access.length === repos.length, `access granted: ${JSON.stringify(batched[0]!.access)}`);
  assert.ok(requests.length <= 2, summary);
  for (const repo of repos) assert.equal((await skopeoInspect(`docker://${sat.host}/${repo}:v1`, { raw: true })).length > 0, true);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startSatellite } from '../helpers/satellite.ts';
import { GC_ENTRY, TEST_ADMIN_TOKEN, eventually, startGroundControl } from '../helpers/groundcontrol.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { freePort } from '../helpers/ports.ts';
import { makeImage, MediaTypes } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { REPO_ROOT } from '../helpers/satellite.ts';
import type { StateMessage } from '../../src/protocol/index.ts';

interface Row {
  id: string;
  appliedGeneration: number | null;
  desiredGeneration: number | null;
  inSync: boolean;
  failures: Array<{ image: string; code: string | null }>;
  state: {
    seq: number;
    version: string;
    images: { ok: number; pending: number; failed: number };
    disk: { bytes: number; freeBytes?: number; totalBytes?: number };
    download?: { bytesDone: number; bytesTotal: number; bytesRemaining: number };
    process?: { rssBytes: number; uptimeSeconds: number; arch: string; board?: string };
    cacheHitRatio: number | null;
  } | null;
}

const ACCEPT = [MediaTypes.manifest, MediaTypes.index, 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

test('reports to Ground Control: download progress while throttled, traffic/proxy counters, stray pulls, nothing sent while idle', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  await makeImage(layout, { tag: 'big', seed: 'rep-big', layerSizes: [3_000_000] });
  await makeImage(layout, { tag: 'debug', seed: 'rep-debug', layerSizes: [200_000] });
  await skopeoCopy(`oci:${layout}:big`, `docker://${upstream.host}/apps/big:v1`);
  await skopeoCopy(`oci:${layout}:debug`, `docker://${upstream.host}/tools/debug:1`);
  // The WAN: 300 KB/s shared, so the 3 MB layer takes about ten seconds.
  const wan = await startFaultProxy(t, { target: upstream.host, rateBytesPerSec: 300_000 });

  const gc = await startGroundControl(t, { config: { upstream: { url: wan.url }, broker: { embedded: { host: '127.0.0.1', port: await freePort() } } } });
  const created = await gc.api<{ satellite: { id: string }; registration: { token: string } }>('POST', '/api/v1/satellites', { name: 'shop-9', site: 'lisbon' });
  const id = created.body.satellite.id;
  await gc.api('PUT', '/api/v1/groups/edge', { name: 'edge', images: [{ repository: 'apps/big', tags: ['v1'] }] });
  await gc.api('POST', '/api/v1/assignments', { group: 'edge', site: 'lisbon' });

  const sat = await startSatellite(t, {
    config: {
      control: { groundControlUrl: gc.url, registrationToken: created.body.registration.token, reportIntervalSeconds: 3600 },
      sync: { intervalSeconds: 3600, retry: { baseMs: 50, maxMs: 500 } },
      // Misses go straight to the registry (not through the slow WAN): the proxy part stays quick.
      proxy: { enabled: true, upstream: { url: upstream.url } },
    },
  });
  const row = async () => (await gc.api<{ satellites: Row[] }>('GET', '/api/v1/status')).body.satellites.find((s) => s.id === id);
  const full = async () => (await gc.api<{ satellite: { status: { state: StateMessage } } }>('GET', `/api/v1/satellites/${id}`)).body.satellite.status.state;

  // (1) While the layer trickles in: the pending image's bytes and the download's remainder reach Ground Control.
  const during = await eventually(async () => {
    const r = await row();
    return r?.state?.download && r.state.download.bytesDone > 0 && r.state.download.bytesRemaining > 0 ? r : undefined;
  }, 60_000, 'a report with a download in progress');
  assert.equal(during.state!.images.pending, 1);
  assert.ok(during.state!.download!.bytesTotal >= 3_000_000, `bytesTotal ${during.state!.download!.bytesTotal}`);
  assert.equal(during.state!.download!.bytesRemaining, during.state!.download!.bytesTotal - during.state!.download!.bytesDone);
  const duringState = await full();
  const pendingImage = duringState.images.find((i) => i.repository === 'apps/big');
  assert.equal(pendingImage?.status, 'pending');
  assert.ok(pendingImage.bytesDone! < pendingImage.bytesTotal!, `bytesDone ${pendingImage.bytesDone} < bytesTotal ${pendingImage.bytesTotal}`);
  // WAN bytes count as they arrive, not when the run ends: the run fetching apps/big is still going
  // (a run before the desired state came fetched nothing), and no proxy traffic yet.
  assert.equal(duringState.lastSync?.bytesFromUpstream ?? 0, 0, 'no finished run fetched anything yet');
  assert.ok(duringState.traffic!.bytesFromUpstream > 0, `bytesFromUpstream ${duringState.traffic!.bytesFromUpstream} during the first download`);
  assert.ok(duringState.traffic!.bytesFromUpstream < 3_000_000, `bytesFromUpstream ${duringState.traffic!.bytesFromUpstream}: only the bytes so far`);
  const progressSeqs = new Set<number>();
  const synced = await eventually(async () => {
    const r = await row();
    if (r?.state) progressSeqs.add(r.state.seq);
    return r?.inSync && r.state?.images.ok === 1 ? r : undefined;
  }, 90_000, 'the image synced');
  assert.equal(synced.state!.download, undefined, 'no download once synced');
  assert.ok(progressSeqs.size >= 2, `progress reports between connect and sync: ${[...progressSeqs]}`);
  assert.equal(synced.state!.process?.arch, process.arch);
  assert.ok(synced.state!.process!.rssBytes > 10_000_000);
  assert.ok((synced.state!.disk.totalBytes ?? 0) > (synced.state!.disk.freeBytes ?? 0));

  // (4) Idle: no report for several seconds (the interval is an hour, the check runs every 3 s).
  // Reports between intervals only leave at a check, so any 6.5 s window holds at least two checks:
  // a report at every check, or at every other one, lands in it.
  await new Promise((r) => setTimeout(r, 4000));
  const idleSeq = (await row())!.state!.seq;
  await new Promise((r) => setTimeout(r, 6500));
  assert.equal((await row())!.state!.seq, idleSeq, 'an idle satellite sent a report between its intervals');

  // (2) + (3) Devices pull through the satellite: a proxy miss of an image not in the desired state,
  // the same blob again (a hit), the synced image, and a name the upstream does not have (404).
  const manifest = await fetch(`${sat.url}/v2/tools/debug/manifests/1`, { headers: { Accept: ACCEPT } });
  assert.equal(manifest.status, 200);
  const layer = (JSON.parse(await manifest.text()) as { layers: Array<{ digest: string }> }).layers[0]!.digest;
  const getLayer = async () => (await fetch(`${sat.url}/v2/tools/debug/blobs/${layer}`).then(async (r) => [r.status, await r.arrayBuffer()]))[0];
  assert.equal(await getLayer(), 200);
  // The fill commits the blob just after the response ends: once no fill is in flight, the next GET
  // is served from the cache.
  await eventually(async () => {
    const res = await fetch(`${sat.url}/_satellite/status`);
    const body = (await res.json()) as { proxy: { inFlight: number } };
    return body.proxy.inFlight === 0 ? true : undefined;
  }, 10_000, 'the proxy fill committed');
  assert.equal(await getLayer(), 200);
  assert.equal((await fetch(`${sat.url}/v2/apps/big/manifests/v1`, { headers: { Accept: ACCEPT } }).then(async (r) => [r.status, await r.text()]))[0], 200);
  const missing = await fetch(`${sat.url}/v2/tools/missing/manifests/2.0`, { headers: { Accept: ACCEPT } });
  await missing.text();
  assert.equal(missing.status, 404);
  // Counters are no news by themselves: they ride along with the next report (here: asked for).
  assert.equal((await gc.api('POST', `/api/v1/satellites/${id}/commands`, { name: 'report' })).status, 202);
  const after = await eventually(async () => {
    const s = await full();
    return s.seq > idleSeq && s.strayPulls ? s : undefined;
  }, 30_000, 'a report with the pulls').catch((err) => {
    console.log(sat.logs().split('\n').filter((l) => !l.includes('"msg":"request"')).slice(-40).join('\n'));
    console.log(gc.logs().split('\n').slice(-40).join('\n'));
    throw err;
  });
  assert.ok(after.traffic!.bytesServed > 200_000, `bytesServed ${after.traffic!.bytesServed}`);
  assert.ok(after.traffic!.bytesFromUpstream >= 3_000_000, `bytesFromUpstream ${after.traffic!.bytesFromUpstream}: the sync and the proxy miss`);
  assert.ok(after.proxy!.misses >= 2, `proxy misses ${after.proxy!.misses}`);
  assert.ok(after.proxy!.hits >= 1, `proxy hits ${after.proxy!.hits}`);
  assert.ok(after.proxy!.bytesFromUpstream >= 200_000);
  assert.ok(after.proxy!.bytesServedFromCache >= 200_000, `served from cache ${after.proxy!.bytesServedFromCache}`);
  assert.deepEqual(
    after.strayPulls!.map((p) => [p.repository, p.reference, p.pulls, p.notFound]).sort(),
    [
      ['tools/debug', '1', 1, 0],
      ['tools/missing', '2.0', 0, 1],
    ],
    'the desired apps/big is not stray',
  );
  const hitRow = await row();
  assert.ok(hitRow!.state!.cacheHitRatio !== null && hitRow!.state!.cacheHitRatio > 0 && hitRow!.state!.cacheHitRatio < 1);

  // The CLI shows the new sections.
  const env: NodeJS.ProcessEnv = { ...process.env, GROUNDCONTROL_URL: gc.url, GROUNDCONTROL_TOKEN: TEST_ADMIN_TOKEN };
  delete env.NODE_TEST_CONTEXT;
  const show = await promisify(execFile)(process.execPath, [GC_ENTRY, 'satellite', 'show', id], { cwd: REPO_ROOT, env });
  assert.match(show.stdout, /^traffic +since start: .+ from upstream, .+ served to devices/m);
  assert.match(show.stdout, /^proxy +since start: \d+ hits, \d+ misses/m);
  assert.match(show.stdout, new RegExp(`^process +${process.arch}.*, RSS .+, up \\d+s`, 'm'));
  assert.match(show.stdout, /^tools\/debug:1 +1 +0$/m);
  assert.match(show.stdout, /^tools\/missing:2\.0 +0 +1$/m);
  const status = await promisify(execFile)(process.execPath, [GC_ENTRY, 'status'], { cwd: REPO_ROOT, env });
  assert.match(status.stdout, /TO DOWNLOAD +CACHE HITS/);

  // (4) A status change between intervals is reported at once: an image the upstream lacks fails.
  const seqBefore = (await full()).seq;
  await gc.api('PUT', '/api/v1/groups/edge', { name: 'edge', images: [{ repository: 'apps/big', tags: ['v1'] }, { repository: 'apps/gone', tags: ['1'] }] });
  const failed = await eventually(async () => {
    const r = await row();
    return r?.failures.some((f) => f.image === 'apps/gone:1') ? r : undefined;
  }, 30_000, 'the failed image reported');
  assert.ok(failed.state!.seq > seqBefore);
});

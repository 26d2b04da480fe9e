import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, statfs, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { makeImage, sha256, type ImageFixture } from '../helpers/fixtures.ts';
import { startSatellite, type Satellite } from '../helpers/satellite.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { blobFile, exists, getStatus, waitForStatus, writeDesired, type StatusDoc } from '../sync/helpers.ts';
import { mountTmpfs } from './tmpfs.ts';
import { startThrottle } from '../proxy/helpers.ts';
import { metricsUrl, parseMetrics, promtoolCheck, scrape, value } from '../observability/helpers.ts';

const MiB = 1024 * 1024;
const INTERVAL_S = 2;

type Disk = StatusDoc['sync']['disk'];
type Doc = StatusDoc & { disk: Disk };

const imageBytes = (img: ImageFixture) => img.layers.reduce((n, l) => n + l.size, 0) + img.config.length;

async function health(sat: Satellite, path: '/healthz' | '/readyz'): Promise<{ status: number; body: { status: string; checks: Record<string, string>; degraded: string[] } }> {
  const res = await fetch(`${sat.url}${path}`);
  return { status: res.status, body: (await res.json()) as { status: string; checks: Record<string, string>; degraded: string[] } };
}

/** PATCH a body of `bytes` to an upload session, chunked (no Content-Length) or with one. */
function patch(url: string, bytes: number, withLength: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream', ...(withLength ? { 'Content-Length': String(bytes) } : {}) } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    // A server that answers early (507) may cut the body: that is the point, not a failure.
    req.on('error', (err) => (err.message.includes('EPIPE') || err.message.includes('ECONNRESET') ? undefined : reject(err)));
    let left = bytes;
    const chunk = Buffer.alloc(256 * 1024, 7);
    Readable.from(
      (function* () {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          yield chunk.subarray(0, n);
        }
      })(),
    )
      .on('error', () => undefined)
      .pipe(req);
  });
}

async function startUpload(sat: Satellite, repo: string): Promise<string> {
  const res = await fetch(`${sat.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  assert.equal(res.status, 202);
  return new URL(res.headers.get('location')!, sat.url).toString();
}

const listDir = (dir: string) => readdir(dir).catch(() => [] as string[]);

test('a full disk does not stop a site: admission, DISK_FULL, no WAN for bytes that cannot be kept, 507 pushes', { timeout: 300_000 }, async (t) => {
  const fs = await mountTmpfs(t, 60 * 1024 * 1024);
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const images: ImageFixture[] = [];
  for (const name of ['a', 'b', 'c']) {
    // ~25 MB each in two layers: room on a 60 MB disk for two, not three.
    images.push(await makeImage(layout, { tag: name, seed: `disk-full-${name}`, layerSizes: [12 * MiB, 12 * MiB] }));
    await skopeoCopy(`oci:${layout}:${name}`, `docker://${upstream.host}/df/${name}:v1`);
  }
  // Every byte the satellite reads from the upstream goes through this relay and is counted.
  const wan = await startFaultProxy(t, { target: upstream.host });
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  const dataDir = join(fs.dir, 'data');
  const sat = await startSatellite(t, {
    dataDir,
    config: {
      sync: { desiredStateFile: desired, intervalSeconds: INTERVAL_S, concurrency: 3, retry: { baseMs: 50, maxMs: 500 } },
      store: { gcGraceSeconds: 0, minFreeBytes: 2 * MiB },
    },
  });
  const status = async () => (await getStatus(sat)) as Doc;
  const imageState = (s: StatusDoc, repo: string) => s.sync.images.find((i) => i.repository === repo);
  const desiredImages = (names: string[]) => names.map((n) => ({ repository: `df/${n}`, tags: ['v1'] }));

  // 1. Three desired, room for two: two are served within a minute, the third is DISK_FULL with numbers.
  const started = Date.now();
  await writeDesired(desired, { generation: 1, upstream: { url: wan.url }, images: desiredImages(['a', 'b', 'c']) });
  // References resolve concurrently, so which image gets the space first is not fixed: two of
  // the three complete and the other one waits, whichever it is.
  const names = ['a', 'b', 'c'];
  const s1 = await waitForStatus(
    sat,
    (s) =>
      names.filter((n) => imageState(s, `df/${n}`)?.status === 'ok').length === 2 &&
      names.filter((n) => imageState(s, `df/${n}`)?.code === 'DISK_FULL').length === 1 &&
      !s.sync.running,
    60_000,
  );
  const loserIdx = names.findIndex((n) => imageState(s1, `df/${n}`)?.code === 'DISK_FULL');
  const loser = names[loserIdx]!;
  const winners = names.filter((n) => n !== loser);
  const tookMs = Date.now() - started;
  assert.ok(tookMs < 60_000, `two images served after ${tookMs} ms`);
  const c = imageState(s1, `df/${loser}`)!;
  assert.equal(c.status, 'failed');
  assert.equal(c.bytesNeeded, imageBytes(images[loserIdx]!), 'bytesNeeded is what the waiting image still needs');
  assert.ok(typeof c.bytesAvailable === 'number' && c.bytesAvailable < c.bytesNeeded!, `bytesAvailable ${c.bytesAvailable} < needed ${c.bytesNeeded}`);
  for (const name of winners) {
    const i = names.indexOf(name);
    const res = await fetch(`${sat.url}/v2/df/${name}/manifests/v1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), images[i]!.manifestDigest);
    const layer = images[i]!.layers[1]!;
    const blob = Buffer.from(await (await fetch(`${sat.url}/v2/df/${name}/blobs/${layer.digest}`)).arrayBuffer());
    assert.equal(sha256(blob), layer.digest);
  }
  const stored = s1.store.bytes;
  const largestBlob = Math.max(...images.flatMap((img) => img.layers.map((l) => l.size)));
  const wanAfterSync = wan.bytesFromTarget();
  assert.ok(wanAfterSync <= 1.05 * stored + largestBlob, `upstream sent ${wanAfterSync} bytes for ${stored} stored`);
  t.diagnostic(`two images served in ${tookMs} ms; upstream bytes ${wanAfterSync} for ${stored} stored (${(wanAfterSync / stored).toFixed(3)}x); c needs ${c.bytesNeeded}, ${c.bytesAvailable} available`);

  // 2. While nothing changes, no upstream bytes at all over several sync intervals.
  const connections = wan.connections();
  await sleep(4 * INTERVAL_S * 1000);
  assert.equal(wan.bytesFromTarget(), wanAfterSync, 'no upstream bytes while the disk is full and nothing changed');
  assert.equal(wan.connections(), connections);
  const s2 = await status();
  assert.equal(s2.sync.disk.held?.reason, 'DISK_FULL');
  assert.equal(s2.disk.condition, 'ok');
  // The metrics say the same: one image waits for space, runs are held.
  const text = await scrape(await metricsUrl(sat));
  await promtoolCheck(text);
  const m = parseMetrics(text);
  assert.equal(value(m, 'harbor_satellite_sync_images_disk_full'), 1);
  assert.equal(value(m, 'harbor_satellite_sync_disk_held'), 1);
  assert.equal(value(m, 'harbor_satellite_disk_min_free_bytes'), 2 * MiB);
  assert.equal(value(m, 'harbor_satellite_disk_read_only'), 0);

  // 3. readyz: ready but degraded (DISK_FULL); healthz alive. No auth, nothing but checks.
  const ready = await health(sat, '/readyz');
  assert.equal(ready.status, 200);
  assert.equal(ready.body.status, 'degraded');
  assert.deepEqual(ready.body.degraded, ['DISK_FULL']);
  assert.deepEqual(Object.keys(ready.body).sort(), ['checks', 'degraded', 'status']);
  assert.equal((await health(sat, '/healthz')).status, 200);

  // 4. Pushes that do not fit: 507 with an OCI error body, nothing left behind.
  const free = (await statfs(fs.dir)).bavail * (await statfs(fs.dir)).bsize;
  const big = free + 4 * MiB;
  const announced = await patch(await startUpload(sat, 'push/big'), big, true);
  assert.equal(announced.status, 507, announced.body);
  const err = (JSON.parse(announced.body) as { errors: Array<{ code: string; detail: { bytesNeeded: number; bytesAvailable: number } }> }).errors[0]!;
  assert.equal(err.code, 'DISK_FULL');
  assert.equal(err.detail.bytesNeeded, big);
  // Streamed without a length: the write hits ENOSPC mid-way; the session and its bytes go.
  const streamed = await patch(await startUpload(sat, 'push/big'), big, false);
  assert.equal(streamed.status, 507, streamed.body);
  assert.equal((JSON.parse(streamed.body) as { errors: Array<{ code: string }> }).errors[0]!.code, 'DISK_FULL');
  assert.deepEqual(await listDir(join(dataDir, 'uploads')), [], 'no upload file left');
  assert.deepEqual(await listDir(join(dataDir, 'ingest')), [], 'no temp file left');
  const freeAfter = (await statfs(fs.dir)).bavail * (await statfs(fs.dir)).bsize;
  assert.ok(freeAfter >= free - 256 * 1024, `free space back after the failed pushes (${freeAfter} vs ${free})`);
  // The registry still answers reads and writes that fit.
  const small = Buffer.from('fits');
  const ok = await fetch(`${sat.url}/v2/push/small/blobs/uploads/?digest=${sha256(small)}`, { method: 'POST', body: small });
  assert.equal(ok.status, 201);

  // 5. The third image dropped: the others apply (generation 2) and nothing of c stays.
  await writeDesired(desired, { generation: 2, upstream: { url: wan.url }, images: desiredImages(winners) });
  const s3 = await waitForStatus(sat, (s) => s.sync.appliedGeneration === 2 && !s.sync.running, 30_000);
  assert.equal(imageState(s3, `df/${loser}`), undefined);
  assert.deepEqual(s3.sync.partials, []);
  assert.deepEqual(await listDir(join(dataDir, 'partial')), []);
  assert.equal(s3.sync.disk.held, null);
  for (const l of images[loserIdx]!.layers) assert.equal((await fetch(`${sat.url}/v2/df/${loser}/blobs/${l.digest}`, { method: 'HEAD' })).status, 404);

});

test('a data filesystem that turns read-only: reads go on, status and readyz say so, no crash, recovers when writable', { timeout: 180_000 }, async (t) => {
  const fs = await mountTmpfs(t, 32 * 1024 * 1024);
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const image = await makeImage(layout, { tag: 'a', seed: 'disk-ro-a', layerSizes: [2 * MiB] });
  await skopeoCopy(`oci:${layout}:a`, `docker://${upstream.host}/df/a:v1`);
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  const dataDir = join(fs.dir, 'data');
  // `mount -o remount,ro` refuses while a file on it is open for writing, and LMDB keeps its map
  // open read-write: the index lives off the tmpfs here (a kernel that remounts after I/O errors
  // does not ask), the blobs, uploads and partials on it.
  const indexDir = await makeTempDir(t, 'hs-index-');
  await mkdir(dataDir);
  await symlink(indexDir, join(dataDir, 'index'));
  const sat = await startSatellite(t, {
    dataDir,
    config: {
      sync: { desiredStateFile: desired, intervalSeconds: INTERVAL_S, retry: { baseMs: 50, maxMs: 500 } },
      store: { gcGraceSeconds: 0, minFreeBytes: 1 * MiB },
    },
  });
  await writeDesired(desired, { generation: 1, upstream: { url: upstream.url }, images: [{ repository: 'df/a', tags: ['v1'] }] });
  await waitForStatus(sat, (s) => s.sync.appliedGeneration === 1 && !s.sync.running, 30_000);
  const layer = image.layers[0]!;

  await fs.remount('ro');
  const ro = await waitForStatus(sat, (s) => (s as Doc).disk.condition === 'read-only', 10_000);
  assert.equal(ro.sync.disk.held?.reason, 'STORE_READ_ONLY');
  const read = Buffer.from(await (await fetch(`${sat.url}/v2/df/a/blobs/${layer.digest}`)).arrayBuffer());
  assert.equal(sha256(read), layer.digest, 'reads keep working on a read-only disk');
  assert.equal((await fetch(`${sat.url}/v2/df/a/manifests/v1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } })).status, 200);
  const roReady = await health(sat, '/readyz');
  assert.equal(roReady.status, 200);
  assert.deepEqual(roReady.body.degraded, ['STORE_READ_ONLY']);
  assert.equal(value(parseMetrics(await scrape(await metricsUrl(sat))), 'harbor_satellite_disk_read_only'), 1);
  assert.equal(roReady.body.checks.disk, 'STORE_READ_ONLY');
  const roPush = await fetch(`${sat.url}/v2/push/ro/blobs/uploads/?digest=${sha256(Buffer.from('ro'))}`, { method: 'POST', body: 'ro' });
  assert.equal(roPush.status, 507);
  assert.equal(((await roPush.json()) as { errors: Array<{ code: string }> }).errors[0]!.code, 'STORE_READ_ONLY');
  const runsBefore = syncRuns(sat);
  await sleep(3 * INTERVAL_S * 1000);
  assert.equal(sat.proc.child.exitCode, null, 'still running after sync intervals on a read-only disk');
  assert.equal(syncRuns(sat), runsBefore, 'no sync runs (and no upstream traffic) while read-only');

  await fs.remount('rw');
  const rw = await waitForStatus(sat, (s) => (s as Doc).disk.condition === 'ok' && s.sync.disk.held === null, 10_000);
  assert.equal(rw.sync.appliedGeneration, 1);
  const back = Buffer.from('writable again');
  const pushed = await fetch(`${sat.url}/v2/push/rw/blobs/uploads/?digest=${sha256(back)}`, { method: 'POST', body: back });
  assert.equal(pushed.status, 201);
  assert.equal((await health(sat, '/readyz')).body.status, 'ok');
  await waitForStatus(sat, () => syncRuns(sat) > runsBefore, 3 * INTERVAL_S * 1000 + 5000);
});

const syncRuns = (sat: Satellite) => sat.logs().split('\n').filter((l) => l.includes('"msg":"sync finished"')).length;

test('partials of an image dropped from the desired state are removed at once, mid-download', { timeout: 120_000 }, async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const small = await makeImage(layout, { tag: 'a', seed: 'drop-a', layerSizes: [256 * 1024] });
  const big = await makeImage(layout, { tag: 'c', seed: 'drop-c', layerSizes: [8 * MiB] });
  await skopeoCopy(`oci:${layout}:a`, `docker://${upstream.host}/df/a:v1`);
  await skopeoCopy(`oci:${layout}:c`, `docker://${upstream.host}/df/c:v1`);
  // 1 MB/s: image c takes ~8 s, time enough to drop it while it downloads.
  const wan = await startThrottle(t, upstream.host, 1024 * 1024);
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  const sat = await startSatellite(t, {
    config: {
      sync: { desiredStateFile: desired, intervalSeconds: 3600, checkpointBytes: 65536, retry: { baseMs: 50, maxMs: 500 } },
      store: { gcGraceSeconds: 0 },
    },
  });
  const layer = big.layers[0]!.digest;
  await writeDesired(desired, { generation: 1, upstream: { url: wan.url }, images: [{ repository: 'df/c', tags: ['v1'] }] });
  await waitForStatus(sat, (s) => s.sync.partials.some((p) => p.digest === layer && p.offset > 0), 30_000);
  const dropped = Date.now();
  await writeDesired(desired, { generation: 2, upstream: { url: wan.url }, images: [{ repository: 'df/a', tags: ['v1'] }] });
  const s = await waitForStatus(sat, (st) => st.sync.appliedGeneration === 2 && !st.sync.running, 30_000);
  const tookMs = Date.now() - dropped;
  assert.deepEqual(s.sync.partials, []);
  assert.deepEqual(await listDir(join(sat.dataDir, 'partial')), [], 'partial file of the dropped image removed');
  assert.ok(tookMs < 8_000, `the new desired state applied after ${tookMs} ms, without finishing the dropped download`);
  assert.equal((await fetch(`${sat.url}/v2/df/a/manifests/v1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } })).headers.get('docker-content-digest'), small.manifestDigest);
  assert.ok(sat.logs().includes('partial downloads no desired image needs removed'));
});

test('a pull-through fill that does not fit: the cache is evicted first; still short, 507 DISK_FULL and nothing half-written', { timeout: 180_000 }, async (t) => {
  const fs = await mountTmpfs(t, 20 * 1024 * 1024);
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const cached = await makeImage(layout, { tag: 'old', seed: 'fill-old', layerSizes: [10 * MiB] });
  const fits = await makeImage(layout, { tag: 'new', seed: 'fill-new', layerSizes: [12 * MiB] });
  const huge = await makeImage(layout, { tag: 'huge', seed: 'fill-huge', layerSizes: [30 * MiB] });
  for (const name of ['old', 'new', 'huge']) await skopeoCopy(`oci:${layout}:${name}`, `docker://${upstream.host}/px/${name}:v1`);
  const dataDir = join(fs.dir, 'data');
  const sat = await startSatellite(t, {
    dataDir,
    config: { proxy: { enabled: true, upstream: { url: upstream.url }, accessFlushSeconds: 1 }, store: { gcGraceSeconds: 0, minFreeBytes: 1 * MiB } },
  });
  const get = async (repo: string, digest: string) => {
    const res = await fetch(`${sat.url}/v2/${repo}/blobs/${digest}`);
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  };
  // A cached image (manifest and layer) fills ~10 of 20 MB.
  assert.equal((await fetch(`${sat.url}/v2/px/old/manifests/v1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } })).status, 200);
  const old = await get('px/old', cached.layers[0]!.digest);
  assert.equal(sha256(old.body), cached.layers[0]!.digest);
  // 12 MB more does not fit beside it: the cache makes room (LRU), the fill succeeds.
  const next = await get('px/new', fits.layers[0]!.digest);
  assert.equal(next.status, 200);
  assert.equal(sha256(next.body), fits.layers[0]!.digest);
  assert.ok(sat.logs().includes('disk pressure: space reclaimed'), 'room made by evicting the cache');
  // 30 MB can never fit on this disk: 507 with an OCI error body, no temp file left.
  assert.equal((await fetch(`${sat.url}/v2/px/huge/manifests/v1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } })).status, 200);
  const res = await fetch(`${sat.url}/v2/px/huge/blobs/${huge.layers[0]!.digest}`);
  assert.equal(res.status, 507, sat.logs().split('\n').slice(-8).join('\n'));
  const body = (await res.json()) as { errors: Array<{ code: string; detail: { bytesNeeded: number; bytesAvailable: number } }> };
  assert.equal(body.errors[0]!.code, 'DISK_FULL');
  assert.equal(body.errors[0]!.detail.bytesNeeded, huge.layers[0]!.size);
  assert.deepEqual(await listDir(join(dataDir, 'ingest')), []);
  // Nothing was evicted for a blob that could never fit; what is stored is still served.
  assert.ok(await exists(blobFile(dataDir, fits.layers[0]!.digest)), 'the cached blob stays');
  assert.equal(sha256((await get('px/new', fits.layers[0]!.digest)).body), fits.layers[0]!.digest);
});

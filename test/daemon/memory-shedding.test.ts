import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSatellite, type Satellite } from '../helpers/satellite.ts';
import { seededBytes, sha256 } from '../helpers/fixtures.ts';
import { metricsUrl, parseMetrics, scrape } from '../observability/helpers.ts';
import type { MemoryStatus } from '../../src/daemon/memory/index.ts';
import type { SyncStatus } from '../../src/sync/index.ts';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { blobFile, syncConfig, writeDesired } from '../sync/helpers.ts';

const MiB = 1024 * 1024;
const REPO = 'mem/app';

interface Status {
  process: { rss: number; heapUsed: number; external: number; arrayBuffers: number };
  memory: MemoryStatus;
  sync: SyncStatus;
}

async function status(sat: Satellite): Promise<Status> {
  const res = await fetch(`${sat.url}/_satellite/status`);
  assert.equal(res.status, 200);
  return (await res.json()) as Status;
}

async function pushBlob(sat: Satellite, body: Buffer): Promise<string> {
  const digest = sha256(body);
  const res = await fetch(`${sat.url}/v2/${REPO}/blobs/uploads/?digest=${digest}`, { method: 'POST', body });
  assert.equal(res.status, 201, await res.text());
  return digest;
}

/** Polls the status until `ok` holds (or the deadline passes); the last status either way. */
async function statusUntil(sat: Satellite, ok: (s: Status) => boolean, timeoutMs: number): Promise<Status> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await status(sat);
    if (ok(s) || Date.now() > deadline) return s;
    await sleep(250);
  }
}

/** A blob GET whose client never reads: the satellite holds the stream's buffers under backpressure. */
async function stalledReader(sat: Satellite, digest: string): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port: sat.port });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(`GET /v2/${REPO}/blobs/${digest} HTTP/1.1\r\nHost: ${sat.host}\r\n\r\n`);
  await once(socket, 'data'); // the head and the first bytes: the stream has started
  socket.pause();
  return socket;
}

test('memory watchdog on a real process: above the soft limit new blob GETs get 429 with Retry-After, manifests 200, status and metrics say so; under the resume mark blob GETs are 200 again', async (t) => {
  // The data: a 64 MiB layer (more than three stalled streams' buffers and socket queues hold), a
  // small config blob and a manifest.
  const layer = seededBytes('memory-watchdog-layer', 64 * MiB);
  const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(cfg), size: cfg.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
    }),
  );
  // Big send buffers (16 MiB chunks, 2 per stream): three stalled readers hold ~96 MiB the
  // satellite has read from disk, far more than the soft limit's margin over idle.
  const registry = { sendBufferBudgetBytes: 192 * MiB, sendChunkMaxBytes: 16 * MiB };

  // 1. The idle RSS of this satellite on this machine, with the data in place, watchdog off.
  const first = await startSatellite(t, { config: { registry } });
  const layerDigest = await pushBlob(first, layer);
  const cfgDigest = await pushBlob(first, cfg);
  const put = await fetch(`${first.url}/v2/${REPO}/manifests/v1`, { method: 'PUT', headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' }, body: manifest });
  assert.equal(put.status, 201);
  await first.stop();
  const probe = await startSatellite(t, { dataDir: first.dataDir, config: { registry } });
  await sleep(1500);
  const idle = (await status(probe)).process.rss;
  assert.equal((await status(probe)).memory.state, 'disabled', 'no limit: the watchdog is off');
  await probe.stop();

  // 2. The same satellite with a soft limit 40 MiB above that idle figure, resuming 24 MiB above it.
  const soft = idle + 40 * MiB;
  const resume = idle + 24 * MiB;
  const sat = await startSatellite(t, { dataDir: first.dataDir, config: { registry, memory: { softLimitBytes: soft, resumeBytes: resume, sampleIntervalMs: 200, retryAfterSeconds: 3 } } });
  const metrics = await metricsUrl(sat);
  const atStart = await statusUntil(sat, (s) => s.memory.rssBytes > 0, 5000);
  assert.equal(atStart.memory.state, 'ok', `idle ${atStart.memory.rssBytes} under the soft limit ${soft}`);
  assert.equal(atStart.memory.softLimitBytes, soft);
  assert.equal((await fetch(`${sat.url}/v2/${REPO}/blobs/${cfgDigest}`)).status, 200);

  // 3. Load: stalled readers until the watchdog sheds (at most 6: 192 MiB of buffers).
  const readers: Socket[] = [];
  t.after(() => readers.forEach((s) => s.destroy()));
  let shedding: Status | undefined;
  for (let i = 0; i < 6 && !shedding; i++) {
    readers.push(await stalledReader(sat, layerDigest));
    const s = await statusUntil(sat, (x) => x.memory.state === 'shedding', 3000);
    if (s.memory.state === 'shedding') shedding = s;
  }
  assert.ok(shedding, `the watchdog never shed: ${JSON.stringify((await status(sat)).memory)}`);
  assert.ok(shedding.memory.rssBytes > soft, 'shedding because RSS is above the soft limit');
  assert.ok(shedding.memory.since && Date.parse(shedding.memory.since) > Date.now() - 60_000);

  // New blob GETs wait: 429, Retry-After, the OCI error body.
  const refused = await fetch(`${sat.url}/v2/${REPO}/blobs/${cfgDigest}`);
  assert.equal(refused.status, 429);
  assert.equal(refused.headers.get('retry-after'), '3');
  const body = (await refused.json()) as { errors: Array<{ code: string; message: string }> };
  assert.equal(body.errors[0]?.code, 'TOOMANYREQUESTS');
  assert.match(body.errors[0]!.message, /memory/);
  // Manifests and HEADs still answer.
  const m = await fetch(`${sat.url}/v2/${REPO}/manifests/v1`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(m.status, 200);
  assert.equal(sha256(Buffer.from(await m.arrayBuffer())), sha256(manifest));
  assert.equal((await fetch(`${sat.url}/v2/${REPO}/blobs/${cfgDigest}`, { method: 'HEAD' })).status, 200);
  const during = await status(sat);
  assert.equal(during.memory.state, 'shedding');
  assert.ok(during.memory.shedRequests >= 1);
  const samples = parseMetrics(await scrape(metrics));
  assert.equal(samples.get('harbor_satellite_memory_shedding'), 1);
  assert.ok((samples.get('harbor_satellite_memory_shed_requests_total') ?? 0) >= 1);
  assert.equal(samples.get('harbor_satellite_memory_soft_limit_bytes'), soft);

  // 4. The readers go: their buffers are collected (the watchdog asks V8 while shedding) and RSS
  // falls under the resume mark; blob GETs are served again.
  for (const r of readers) r.destroy();
  const after = await statusUntil(sat, (s) => s.memory.state === "ok", 40_000);
  assert.equal(after.memory.state, 'ok', `still shedding: ${JSON.stringify(after.memory)}; process ${JSON.stringify(after.process)}; during ${JSON.stringify(during.process)}`);
  assert.ok(after.memory.rssBytes < resume);
  assert.equal(after.memory.since, null);
  const served = await fetch(`${sat.url}/v2/${REPO}/blobs/${cfgDigest}`);
  assert.equal(served.status, 200);
  assert.equal(sha256(Buffer.from(await served.arrayBuffer())), cfgDigest);
  assert.equal(parseMetrics(await scrape(metrics)).get('harbor_satellite_memory_shedding'), 0);

  // The log says it once when shedding starts and once when it stops, not per request.
  const logs = sat.logs();
  assert.equal(logs.match(/memory above the soft limit: shedding load/g)?.length, 1);
  assert.equal(logs.match(/memory under the resume mark/g)?.length, 1);
});

test('memory watchdog and sync: while shedding no blob download starts (run paused, image pending); under the resume mark the run starts again and completes', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  await makeImage(layout, { tag: 'a', seed: 'mem-sync-a', layerSizes: [256 * 1024] });
  const b = await makeImage(layout, { tag: 'b', seed: 'mem-sync-b', layerSizes: [2 * MiB] });
  await skopeoCopy(`oci:${layout}:a`, `docker://${upstream.host}/mem/a:v1`);
  await skopeoCopy(`oci:${layout}:b`, `docker://${upstream.host}/mem/b:v1`);
  const desired = join(await makeTempDir(t, 'hs-desired-'), 'desired.json');
  const imageA = { repository: 'mem/a', tags: ['v1'] };
  await writeDesired(desired, { generation: 1, upstream: { url: upstream.url }, images: [imageA] });
  const registry = { sendBufferBudgetBytes: 192 * MiB, sendChunkMaxBytes: 16 * MiB };
  const base = { ...syncConfig(desired), registry };

  // Idle RSS with sync configured and its upstream client loaded (image a synced), watchdog off.
  const first = await startSatellite(t, { config: base });
  await statusUntil(first, (s) => s.sync.appliedGeneration === 1, 60_000);
  const layer = seededBytes('memory-watchdog-sync-layer', 64 * MiB);
  const layerDigest = await pushBlob(first, layer);
  await first.stop();
  const probe = await startSatellite(t, { dataDir: first.dataDir, config: base });
  const probeStart = Date.now();
  await statusUntil(probe, (s) => !s.sync.running && Date.parse(s.sync.lastRun?.startedAt ?? '0') >= probeStart - 1000, 30_000);
  await sleep(1500);
  const idle = (await status(probe)).process.rss;
  await probe.stop();

  const sat = await startSatellite(t, { dataDir: first.dataDir, config: { ...base, memory: { softLimitBytes: idle + 40 * MiB, resumeBytes: idle + 24 * MiB, sampleIntervalMs: 200 } } });
  const started = Date.now();
  const ready = await statusUntil(sat, (s) => !s.sync.running && Date.parse(s.sync.lastRun?.startedAt ?? '0') >= started - 1000, 30_000);
  assert.equal(ready.memory.state, 'ok');
  const readers: Socket[] = [];
  t.after(() => readers.forEach((s) => s.destroy()));
  for (let i = 0; i < 6 && (await status(sat)).memory.state !== 'shedding'; i++) {
    readers.push(await stalledReader(sat, layerDigest));
    await statusUntil(sat, (x) => x.memory.state === 'shedding', 3000);
  }
  assert.equal((await status(sat)).memory.state, 'shedding');

  // A new desired state while shedding: planned (manifests are small) but no blob of b is fetched.
  await writeDesired(desired, { generation: 2, upstream: { url: upstream.url }, images: [imageA, { repository: 'mem/b', tags: ['v1'] }] });
  const held = await statusUntil(sat, (s) => s.sync.lastRun?.generation === 2 && !s.sync.running, 30_000);
  assert.equal(held.memory.state, 'shedding', 'still shedding when the run ended');
  assert.equal(held.sync.lastRun?.result, 'paused');
  assert.match(held.sync.paused?.reason ?? '', /memory above the soft limit/);
  assert.equal(held.sync.images.find((i) => i.repository === 'mem/b')?.status, 'pending');
  assert.equal(held.sync.appliedGeneration, 1);
  assert.ok(held.sync.lastRun!.bytesFromUpstream < 256 * 1024, `only manifests were read: ${held.sync.lastRun!.bytesFromUpstream}`);

  // Load gone, memory under the resume mark: the held run starts again and finishes.
  for (const r of readers) r.destroy();
  const done = await statusUntil(sat, (s) => s.sync.appliedGeneration === 2, 60_000);
  assert.equal(done.sync.appliedGeneration, 2, `not applied: memory ${JSON.stringify(done.memory)}, sync paused ${JSON.stringify(done.sync.paused)}`);
  assert.equal(done.memory.state, 'ok');
  assert.equal(done.sync.paused, null);
  const bLayer = b.layers[0]!;
  assert.equal(`sha256:${createHash('sha256').update(await readFile(blobFile(sat.dataDir, bLayer.digest))).digest('hex')}`, bLayer.digest);
});

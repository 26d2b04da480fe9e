import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { blobFile, exists, getStatus, syncConfig, waitForGeneration, waitForStatus, writeDesired } from './helpers.ts';

const MiB = 1024 * 1024;

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

test('a link cut every 16 MB: a 200 MB image completes reading at most 1.05x its size', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'cut-200', layerSizes: [120 * MiB, 80 * MiB] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/big/image:v1`);
  const size = img.layers.reduce((a, l) => a + l.size, 0) + img.config.length + img.manifest.length;
  const proxy = await startFaultProxy(t, { target: upstream.host, cutEveryBytes: 16 * MiB });
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: proxy.url }, images: [{ repository: 'big/image', tags: ['v1'] }] });
  const sat = await startSatellite(t, { config: syncConfig(desired) });
  const status = await waitForGeneration(sat, 1, 120_000);
  const wan = proxy.bytesFromTarget();
  t.diagnostic(`image ${size} bytes; read through the cutting link ${wan} bytes (${(wan / size).toFixed(4)}x)`);
  assert.ok(wan <= size * 1.05, `${wan} bytes for a ${size}-byte image`);
  assert.ok(status.sync.lastRun!.bytesFromUpstream >= size - img.manifest.length);
  for (const layer of img.layers) assert.equal(await hashFile(blobFile(sat.dataDir, layer.digest)), layer.digest);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/big/image:v1`, { raw: true })), img.manifestDigest);
});

test('kill -9 mid-download: the partial blob resumes after restart and nothing corrupt is served', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'kill-resume', layerSizes: [96 * MiB] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/resume/me:v1`);
  const proxy = await startFaultProxy(t, { target: upstream.host });
  const dir = await makeTempDir(t, 'hs-desired-');
  const dataDir = await makeTempDir(t, 'hs-data-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: proxy.url }, images: [{ repository: 'resume/me', tags: ['v1'] }] });
  // Slow the first process down so it can be killed in the middle of the layer.
  const first = await startSatellite(t, {
    dataDir,
    config: syncConfig(desired, { bandwidthBytesPerSecond: 24 * MiB, checkpointBytes: MiB }),
  });
  const mid = await waitForStatus(first, (s) => (s.sync.partials[0]?.offset ?? 0) >= 30 * MiB, 60_000);
  const durable = mid.sync.partials[0]!.offset;
  // Nothing half-downloaded is visible while in flight.
  assert.equal((await fetch(`${first.url}/v2/resume/me/blobs/${layer.digest}`, { method: 'HEAD' })).status, 404);
  await first.kill('SIGKILL');
  const before = proxy.bytesFromTarget();

  const second = await startSatellite(t, { dataDir, config: syncConfig(desired) });
  const done = await waitForGeneration(second, 1, 60_000);
  const secondRun = proxy.bytesFromTarget() - before;
  t.diagnostic(`killed with ${durable} bytes durable of ${layer.size}; the restart read ${secondRun} bytes`);
  assert.ok(done.sync.lastRun!.blobsResumed >= 1, 'the download resumed');
  assert.ok(secondRun <= layer.size - durable + 2 * MiB, `restart read ${secondRun} bytes, ${layer.size - durable} were missing`);
  assert.equal(await hashFile(blobFile(dataDir, layer.digest)), layer.digest);
  assert.deepEqual(done.sync.partials, []);
  const res = await fetch(`${second.url}/v2/resume/me/blobs/${layer.digest}`, { headers: { Range: 'bytes=0-15' } });
  assert.equal(res.status, 206);
  await res.arrayBuffer();
});

test('a link that flips a byte: the blob fails with a digest error and nothing is stored', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'flip', layerSizes: [2 * MiB] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/flip/me:v1`);
  const proxy = await startFaultProxy(t, { target: upstream.host, flipByteAt: 1 * MiB });
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: proxy.url }, images: [{ repository: 'flip/me', tags: ['v1'] }] });
  const sat = await startSatellite(t, { config: syncConfig(desired) });
  const failed = await waitForStatus(sat, (s) => s.sync.lastRun?.generation === 1 && !s.sync.running);
  assert.equal(failed.sync.appliedGeneration, null);
  assert.equal(failed.sync.images[0]?.status, 'failed');
  assert.match(failed.sync.images[0]?.code ?? '', /DIGEST_MISMATCH/);
  assert.equal(await exists(blobFile(sat.dataDir, layer.digest)), false, 'corrupt bytes are never stored');
  assert.deepEqual(failed.sync.partials, [], 'nor kept as a partial');
  assert.equal((await fetch(`${sat.url}/v2/flip/me/blobs/${layer.digest}`, { method: 'HEAD' })).status, 404);
  assert.equal((await fetch(`${sat.url}/v2/flip/me/manifests/v1`, { method: 'HEAD' })).status, 404);

  // Once the link is clean, the next generation succeeds.
  proxy.setFlipByteAt(undefined);
  await writeDesired(desired, { generation: 2, upstream: { url: proxy.url }, images: [{ repository: 'flip/me', tags: ['v1'] }] });
  await waitForGeneration(sat, 2);
  assert.equal(await hashFile(blobFile(sat.dataDir, layer.digest)), layer.digest);
});

test('data caps and sync windows hold downloads without losing progress', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'capped', layerSizes: [6 * MiB] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/capped/img:v1`);
  const dir = await makeTempDir(t, 'hs-desired-');
  const dataDir = await makeTempDir(t, 'hs-data-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: upstream.url }, images: [{ repository: 'capped/img', tags: ['v1'] }] });

  // A window twelve hours away: nothing is downloaded now.
  const away = `* ${(new Date().getUTCHours() + 12) % 24} * * *`;
  const closed = await startSatellite(t, { dataDir, config: syncConfig(desired, { windows: [away], windowTimezone: 'UTC' }) });
  const waiting = await waitForStatus(closed, (s) => s.sync.lastRun?.generation === 1 && !s.sync.running);
  assert.equal(waiting.sync.lastRun?.result, 'paused');
  assert.equal(waiting.sync.paused?.reason, 'outside the sync window');
  assert.ok(Date.parse(waiting.sync.paused!.until!) - Date.now() > 10 * 3600_000, 'the next window opens in about 12 h');
  assert.equal(waiting.sync.images[0]?.status, 'pending');
  assert.ok(waiting.sync.lastRun!.bytesFromUpstream < 64 * 1024, 'only manifests were read');
  await closed.stop();

  // An hourly cap of 2 MiB: the download pauses at the cap with its progress durable.
  const restartedAt = Date.now();
  const capped = await startSatellite(t, { dataDir, config: syncConfig(desired, { caps: { hourBytes: 2 * MiB }, checkpointBytes: 256 * 1024 }) });
  // The last run of the previous process is on record too: wait for this process's own run.
  const paused = await waitForStatus(capped, (s) => Date.parse(s.sync.lastRun?.startedAt ?? '0') >= restartedAt && !s.sync.running);
  assert.equal(paused.sync.lastRun?.result, 'paused');
  assert.match(paused.sync.paused?.reason ?? '', /hour data cap of 2097152 bytes reached/);
  assert.ok(paused.sync.paused?.until, 'says when downloads resume');
  const kept = paused.sync.partials[0]?.offset ?? 0;
  assert.ok(kept > 0 && kept <= 3 * MiB, `partial progress ${kept}`);
  assert.ok(paused.sync.meters.hour.bytes >= 2 * MiB);
  await capped.stop();

  // Cap lifted (a new period, or a new budget): it resumes from the partial.
  const open = await startSatellite(t, { dataDir, config: syncConfig(desired) });
  const done = await waitForGeneration(open, 1);
  assert.equal(done.sync.lastRun?.blobsResumed, 1);
  assert.ok(done.sync.lastRun!.bytesFromUpstream <= img.layers[0]!.size - kept + 512 * 1024);
  assert.equal(await hashFile(blobFile(dataDir, img.layers[0]!.digest)), img.layers[0]!.digest);
  assert.ok((await getStatus(open)).sync.meters.month.bytes >= img.layers[0]!.size, 'meters persist across restarts');
});

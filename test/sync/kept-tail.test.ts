import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startCountingRelay } from '../helpers/counting-relay.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { blobFile, getStatus, syncConfig, waitForGeneration, waitForStatus, writeDesired } from './helpers.ts';
import { hashFile, MiB, startThrottle } from '../proxy/helpers.ts';

const partialFile = (dataDir: string, digest: string) => join(dataDir, 'partial', digest.replace(':', '-'));
const fileSize = async (path: string) => (await stat(path).catch(() => undefined))?.size ?? 0;

async function setup(t: import('node:test').TestContext, seed: string) {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed, layerSizes: [48 * MiB] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/tail/me:v1`);
  // The relay counts what it forwards; the throttle behind it keeps that close to what the satellite
  // takes (a request dropped mid-body leaves only what was in flight counted).
  const slow = await startThrottle(t, upstream.host, 32 * MiB);
  const relay = await startCountingRelay(t, { target: slow.url.slice('http://'.length), cutAfter: [] });
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: relay.url }, images: [{ repository: 'tail/me', tags: ['v1'] }] });
  const dataDir = await makeTempDir(t, 'hs-data-');
  return { layer: img.layers[0]!, relay, desired, dataDir };
}

test('kill -9 during a throttled download: the bytes written after the last checkpoint are kept; the restart fetches only the rest', async (t) => {
  const { layer, relay, desired, dataDir } = await setup(t, 'tail-kill');
  // No checkpoint before the kill: everything on disk is the unrecorded tail.
  const first = await startSatellite(t, { dataDir, config: syncConfig(desired, { bandwidthBytesPerSecond: 12 * MiB, checkpointBytes: 256 * MiB }) });
  const path = partialFile(dataDir, layer.digest);
  await waitForStatus(first, () => true);
  for (const deadline = Date.now() + 60_000; (await fileSize(path)) < 16 * MiB; ) {
    assert.ok(Date.now() < deadline, 'the download did not get going');
    await new Promise((r) => setTimeout(r, 50));
  }
  await first.kill('SIGKILL');
  const kept = await fileSize(path);
  const getsBefore = relay.blobs().length;

  const second = await startSatellite(t, { dataDir, config: syncConfig(desired) });
  const done = await waitForGeneration(second, 1, 120_000);
  const after = relay.blobs().slice(getsBefore).filter((b) => b.digest === layer.digest);
  const fetched = after.reduce((n, b) => n + b.sent, 0);
  t.diagnostic(`killed with ${kept} bytes on disk (none checkpointed) of ${layer.size}; the restart fetched ${fetched} bytes`);
  assert.equal(after.length, 1);
  assert.equal(after[0]!.start, kept, 'the restart asked from the end of the kept tail');
  assert.equal(fetched, layer.size - kept, 'only the missing bytes crossed the link again');
  assert.ok(done.sync.lastRun!.blobsResumed >= 1);
  assert.equal(await hashFile(blobFile(dataDir, layer.digest)), layer.digest);
  assert.deepEqual(done.sync.partials, []);
});

test('garbage after the last checkpoint (a power cut): the digest catches it and only the tail is fetched again', async (t) => {
  const { layer, relay, desired, dataDir } = await setup(t, 'tail-garbage');
  const first = await startSatellite(t, { dataDir, config: syncConfig(desired, { bandwidthBytesPerSecond: 12 * MiB, checkpointBytes: 8 * MiB }) });
  const path = partialFile(dataDir, layer.digest);
  // Kill with a checkpoint behind and 2-6 MiB of unrecorded tail after it (the next checkpoint is >= 2 MiB away).
  let durable = 0;
  for (const deadline = Date.now() + 60_000; ; ) {
    assert.ok(Date.now() < deadline, 'no moment with a checkpoint and a tail');
    const s = await getStatus(first);
    durable = s.sync.partials[0]?.offset ?? 0;
    const tail = (await fileSize(path)) - durable;
    if (durable >= 8 * MiB && tail >= 2 * MiB && tail <= 6 * MiB) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await first.kill('SIGKILL');
  const kept = await fileSize(path);
  // The last 256 KiB of the tail never reached the disk as written: garbage in their place.
  const fh = await open(path, 'r+');
  await fh.write(randomBytes(256 * 1024), 0, 256 * 1024, kept - 256 * 1024);
  await fh.close();
  const getsBefore = relay.blobs().length;

  const second = await startSatellite(t, { dataDir, config: syncConfig(desired) });
  await waitForGeneration(second, 1, 120_000);
  const after = relay.blobs().slice(getsBefore).filter((b) => b.digest === layer.digest);
  const fetched = after.reduce((n, b) => n + b.sent, 0);
  t.diagnostic(`killed with ${kept} bytes on disk, ${durable} checkpointed, of ${layer.size}; the restart fetched ${fetched} bytes in ${after.length} GETs`);
  assert.match(second.logs(), /kept tail failed the digest/);
  assert.deepEqual(after.map((b) => b.start), [kept, durable], 'the rest after the tail, then the tail again from the checkpoint');
  // The tail's request is dropped once the tail is rewritten: what was in flight then is the only overshoot.
  const overshoot = fetched - (layer.size - kept) - (kept - durable);
  t.diagnostic(`tail ${kept - durable} bytes; overshoot ${overshoot} bytes`);
  assert.ok(overshoot >= 0 && overshoot <= 4 * MiB, `fetched ${fetched}: the rest, the tail, and ${overshoot} bytes more`);
  assert.equal(await hashFile(blobFile(dataDir, layer.digest)), layer.digest);
});

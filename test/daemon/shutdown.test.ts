import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { blobFile, syncConfig, waitForGeneration, waitForStatus, writeDesired } from '../sync/helpers.ts';

const MiB = 1024 * 1024;

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return `sha256:${h.digest('hex')}`;
}

/** The JSON log record of the first line matching `msg` (and digest, if given). */
function record(logs: string, msg: string, digest?: string): Record<string, unknown> | undefined {
  for (const line of logs.split('\n')) {
    if (!line.includes(`"msg":"${msg}"`)) continue;
    const r = JSON.parse(line) as Record<string, unknown>;
    if (digest === undefined || r.digest === digest) return r;
  }
  return undefined;
}

test('SIGTERM mid-download: exit 0 within the deadline, the partial is checkpointed, the restart resumes from it', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'sigterm-resume', layerSizes: [64 * MiB] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/stop/me:v1`);
  const proxy = await startFaultProxy(t, { target: upstream.host });
  const dir = await makeTempDir(t, 'hs-desired-');
  const dataDir = await makeTempDir(t, 'hs-data-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: proxy.url }, images: [{ repository: 'stop/me', tags: ['v1'] }] });
  // 8 MiB/s, checkpoints every 16 MiB: SIGTERM lands between periodic checkpoints.
  const first = await startSatellite(t, { dataDir, config: syncConfig(desired, { bandwidthBytesPerSecond: 8 * MiB, checkpointBytes: 16 * MiB }) });
  await waitForStatus(first, (s) => (s.sync.partials[0]?.offset ?? 0) >= 16 * MiB, 60_000);
  // Let it get past the periodic checkpoint so the shutdown one has something to add.
  await new Promise((r) => setTimeout(r, 700));
  const sentAt = Date.now();
  const exit = await first.kill('SIGTERM');
  const tookMs = Date.now() - sentAt;
  t.diagnostic(`exited ${exit.code} after ${tookMs} ms`);
  assert.equal(exit.code, 0, first.logs().split('\n').slice(-20).join('\n'));
  assert.ok(tookMs < 25_000, `took ${tookMs} ms, beyond the 25 s deadline`);
  const checkpoint = record(first.logs(), 'download checkpointed', layer.digest);
  assert.ok(checkpoint, `no checkpoint logged:\n${first.logs().split('\n').slice(-20).join('\n')}`);
  const n = checkpoint.offset as number;
  t.diagnostic(`checkpointed at ${n} of ${layer.size} bytes`);
  assert.ok(n > 16 * MiB && n < layer.size, `checkpoint at ${n}: more than the last periodic checkpoint, less than the blob`);
  assert.ok(record(first.logs(), 'satellite stopped'), 'the store was closed in order');
  assert.equal(record(first.logs(), 'sync run failed'), undefined, 'a stop is not a failure');
  const before = proxy.bytesFromTarget();

  const second = await startSatellite(t, { dataDir, config: syncConfig(desired) });
  const done = await waitForGeneration(second, 1, 60_000);
  const resumed = record(second.logs(), 'download resuming from checkpoint', layer.digest);
  assert.ok(resumed, 'the restart logged where it resumed');
  assert.ok((resumed.offset as number) >= n, `resumed from ${String(resumed.offset)}, checkpointed ${n}`);
  const secondRun = proxy.bytesFromTarget() - before;
  t.diagnostic(`restart resumed at ${String(resumed.offset)} and read ${secondRun} bytes`);
  assert.ok(secondRun <= layer.size - n + MiB, `restart read ${secondRun} bytes; ${layer.size - n} were missing`);
  assert.ok(done.sync.lastRun!.blobsResumed >= 1);
  assert.equal(await hashFile(blobFile(dataDir, layer.digest)), layer.digest);
});

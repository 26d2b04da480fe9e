import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { startCountingRelay } from '../helpers/counting-relay.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { blobFile, fetchHash, getStatus, hashFile, MiB, proxyConfig, startThrottle, waitFor } from './helpers.ts';

test('kill -9 and SIGTERM in the middle of a fill: nothing half-written is visible, the next start resumes from the kept bytes and serves a verified blob', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'proxy-crash', layerSizes: [30 * MiB] });
  const layer = img.layers[0]!;
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/crash/me:v1`);
  const slow = await startThrottle(t, upstream.host, 10 * MiB);
  const dataDir = await makeTempDir(t, 'hs-data-');
  const url = (base: string) => `${base}/v2/crash/me/blobs/${layer.digest}`;
  const partialFile = join(dataDir, 'partial', layer.digest.replace(':', '-'));
  const kept = async () => (await stat(partialFile).catch(() => undefined))?.size ?? 0;

  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    const sat = await startSatellite(t, { dataDir, config: proxyConfig(slow.url) });
    const before = await kept();
    const pulling = fetchHash(url(sat.url));
    // Mid-fill: more bytes are in the blob's partial file than the last process left.
    await waitFor('the fill to be under way', async () => ((await kept()) > before ? true : undefined));
    await new Promise((r) => setTimeout(r, 500));
    // SIGTERM drains in-flight requests: a stalled link keeps the fill from finishing meanwhile.
    if (signal === 'SIGTERM') slow.stall(true);
    await sat.kill(signal);
    slow.stall(false);
    const got = await pulling;
    const file = await hashFile(blobFile(dataDir, layer.digest)).catch(() => 'absent');
    if (signal === 'SIGKILL') {
      assert.ok(got.status === -1 || got.bytes < layer.size, `the client must not get a complete blob (${JSON.stringify(got)})`);
      assert.equal(file, 'absent', 'no blob file');
      assert.ok((await kept()) > 0, 'the bytes fetched before the kill are kept');
    } else {
      // SIGTERM drains in-flight requests (10 s at most), then stops the fill, its progress checkpointed.
      assert.ok(got.status === -1 || got.bytes < layer.size, `the client must not get a complete blob (${JSON.stringify(got)})`);
      assert.equal(file, 'absent', 'no blob file');
      assert.ok((await kept()) > before, 'the bytes fetched before SIGTERM are kept');
    }
    t.diagnostic(`after ${signal}: ${await kept()} bytes kept of ${layer.size}`);
  }

  // The next start resumes the fill from the partial file: only the missing bytes cross the link.
  const left = await kept();
  const relay = await startCountingRelay(t, { target: upstream.host, cutAfter: [] });
  const sat = await startSatellite(t, { dataDir, config: proxyConfig(relay.url) });
  assert.deepEqual(await readdir(join(dataDir, 'ingest')), [], 'temp files removed at start');
  const good = await fetchHash(url(sat.url));
  assert.equal(good.status, 200, good.error);
  assert.equal(good.digest, layer.digest);
  await waitFor('the commit', async () => ((await getStatus(sat)).store.blobs === 1 ? true : undefined));
  assert.equal(await hashFile(blobFile(dataDir, layer.digest)), layer.digest);
  const gets = relay.blobs().filter((b) => b.digest === layer.digest);
  t.diagnostic(`restart: ${left} bytes kept, ${relay.blobBytes()} fetched for a ${layer.size}-byte blob`);
  assert.equal(gets.length, 1);
  assert.equal(gets[0]!.start, left, 'the fill asked from the kept bytes');
  assert.equal(relay.blobBytes(), layer.size - left, 'only the missing bytes crossed the link');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage, writeIndex } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { blobFile, exists, syncConfig, waitForGeneration, writeDesired } from '../sync/helpers.ts';

const ARM = { os: 'linux', architecture: 'arm64' };
const AMD = { os: 'linux', architecture: 'amd64' };

test('the raspberry-pi profile\'s platform filter applies to images whose desired state names none', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const amd = await makeImage(layout, { seed: 'board-amd', layerSizes: [120_000], platform: AMD });
  const arm = await makeImage(layout, { seed: 'board-arm', layerSizes: [110_000], platform: ARM });
  await writeIndex(layout, { tag: 'multi', images: [amd, arm] });
  await skopeoCopy(`oci:${layout}:multi`, `docker://${upstream.host}/apps/multi:v1`, { all: true });
  await skopeoCopy(`oci:${layout}:multi`, `docker://${upstream.host}/apps/pinned:v1`, { all: true });

  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, {
    generation: 1,
    upstream: { url: upstream.url },
    images: [
      { repository: 'apps/multi', tags: ['v1'] },
      // The desired state's own filter beats the board's default.
      { repository: 'apps/pinned', tags: ['v1'], platforms: ['linux/amd64'] },
    ],
  });
  const sat = await startSatellite(t, { config: syncConfig(desired), args: ['--board', 'raspberry-pi'] });
  await sat.waitForLog(/"board":"[^"]*\/board\/raspberry-pi\.json".*"msg":"satellite started"/);
  const status = await waitForGeneration(sat, 1);
  assert.equal(status.sync.lastRun?.result, 'ok');
  const head = (path: string) => fetch(`${sat.url}${path}`, { method: 'HEAD' }).then((r) => r.status);
  assert.equal(await head(`/v2/apps/multi/manifests/${arm.manifestDigest}`), 200);
  assert.equal(await head(`/v2/apps/multi/manifests/${amd.manifestDigest}`), 404, 'amd64 filtered out by the board');
  assert.equal(await head(`/v2/apps/pinned/manifests/${amd.manifestDigest}`), 200);
  assert.equal(await head(`/v2/apps/pinned/manifests/${arm.manifestDigest}`), 404);
  assert.equal(await exists(blobFile(sat.dataDir, arm.layerDigests[0]!)), true);
  assert.equal(await exists(blobFile(sat.dataDir, amd.layerDigests[0]!)), true, 'amd64 layer stored for apps/pinned');

  // Without the profile the same document keeps every platform of apps/multi.
  const plain = await startSatellite(t, { config: syncConfig(desired) });
  await waitForGeneration(plain, 1);
  assert.equal(await fetch(`${plain.url}/v2/apps/multi/manifests/${amd.manifestDigest}`, { method: 'HEAD' }).then((r) => r.status), 200);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT, startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { spawnPeer } from '../helpers/process.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { hostPlatform, makeLayer, sha256, writeImage } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { offlineConfig, SATELLITE_ENTRY, satelliteCli, satelliteRun, storedBlobs } from './helpers.ts';

const MiB = 1024 * 1024;

/** Upstream with images `small` (1 layer) and `big` (6 layers of 12 MiB); bundles of each. */
async function fixtures(t: Parameters<typeof makeTempDir>[0], bigLayerCount = 6) {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-live-layout-');
  const platform = hostPlatform();
  const small = await writeImage(layout, { tag: 'small', layers: [await makeLayer('live-small', 500_000, { dir: layout })], platform });
  const bigLayers = [];
  for (let i = 0; i < bigLayerCount; i++) bigLayers.push(await makeLayer(`live-big-${i}`, 12 * MiB, { dir: layout }));
  const big = await writeImage(layout, { tag: 'big', layers: bigLayers, platform });
  await skopeoCopy(`oci:${layout}:small`, `docker://${upstream.host}/apps/small:v1`);
  await skopeoCopy(`oci:${layout}:big`, `docker://${upstream.host}/apps/big:v1`);
  const dir = await makeTempDir(t, 'hs-live-bundles-');
  const cfg = await offlineConfig(t, await makeTempDir(t, 'hs-live-unused-'));
  for (const name of ['small', 'big']) {
    const res = await satelliteCli(cfg, ['create', '--from', upstream.url, '--image', `apps/${name}:v1`, '-o', join(dir, name)]);
    assert.equal(res.code, 0, res.stderr);
  }
  return { small, big, smallBundle: join(dir, 'small'), bigBundle: join(dir, 'big') };
}

test('bundle import into a running satellite while devices pull: an image appears only whole', async (t) => {
  const fx = await fixtures(t);
  const sat = await startSatellite(t, { config: { log: { level: 'info' } } });
  // Goes through the admin socket: the satellite itself imports (its log says so).
  const first = await satelliteCli(sat.configFile, ['import', fx.smallBundle]);
  assert.equal(first.code, 0, first.stderr);
  await sat.waitForLog(/"dir":"[^"]*small".*"msg":"bundle imported"/);

  // Devices: one pulls `small` over and over; one polls `big`, and whenever its manifest answers,
  // fetches every blob it names at once.
  let stop = false;
  const seen = { smallPulls: 0, bigMissing: 0, bigWhole: 0, halfImages: [] as string[] };
  const smallBlob = fx.small.layerDigests[0]!;
  const puller = (async () => {
    while (!stop) {
      const res = await fetch(`${sat.url}/v2/apps/small/blobs/${smallBlob}`);
      assert.equal(res.status, 200);
      assert.equal(sha256(Buffer.from(await res.arrayBuffer())), smallBlob);
      seen.smallPulls++;
    }
  })();
  const poller = (async () => {
    while (!stop) {
      const res = await fetch(`${sat.url}/v2/apps/big/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      if (res.status === 404) {
        await res.arrayBuffer();
        seen.bigMissing++;
        await sleep(5);
        continue;
      }
      assert.equal(res.status, 200);
      const manifest = JSON.parse(Buffer.from(await res.arrayBuffer()).toString('utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
      for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
        const blob = await fetch(`${sat.url}/v2/apps/big/blobs/${d}`, { method: 'HEAD' });
        if (blob.status !== 200) seen.halfImages.push(`${d}: ${blob.status}`);
      }
      seen.bigWhole++;
    }
  })();
  await sleep(200);
  const second = await satelliteCli(sat.configFile, ['import', fx.bigBundle]);
  assert.equal(second.code, 0, second.stderr);
  const report = JSON.parse(second.stdout) as { blobsImported: number; images: Array<{ status: string }> };
  assert.equal(report.blobsImported, 7, '6 layers and the config');
  await sleep(300);
  stop = true;
  await Promise.all([puller, poller]);
  assert.deepEqual(seen.halfImages, [], 'a manifest that answered named only blobs already served');
  assert.ok(seen.bigMissing > 0 && seen.bigWhole > 0, `polled before and after: ${JSON.stringify(seen)}`);
  assert.ok(seen.smallPulls > 0, 'the satellite kept serving during the import');
  assert.match(sat.logs(), /"dir":"[^"]*big".*"msg":"bundle imported"/);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/apps/big:v1`, { raw: true })), fx.big.manifestDigest);
});

test('bundle import killed with SIGKILL mid-way: no image half visible, the rerun completes, every blob verifies', async (t) => {
  const fx = await fixtures(t);
  const dataDir = await makeTempDir(t, 'hs-live-kill-');
  const cfg = await offlineConfig(t, dataDir);
  const ingest = join(dataDir, 'ingest');
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const proc = spawnPeer(process.execPath, [SATELLITE_ENTRY, '--config', cfg, 'bundle', 'import', fx.bigBundle], { cwd: REPO_ROOT, env, name: 'bundle-import' });
  // Kill once a blob is committed and the next is being copied (a temp file in the ingest dir).
  let killedWith = -1;
  for (let i = 0; i < 20_000 && killedWith < 0; i++) {
    const committed = (await storedBlobs(dataDir)).length;
    const copying = (await readdir(ingest).catch(() => [] as string[])).length;
    if (committed >= 1 && copying >= 1) {
      proc.child.kill('SIGKILL');
      killedWith = committed;
    }
    if (proc.child.exitCode !== null) break;
    await sleep(1);
  }
  const exit = await proc.exited;
  assert.ok(killedWith >= 1 && killedWith < 7, `killed mid-way (${killedWith} of 7 blobs stored; exit ${JSON.stringify(exit)})`);
  assert.equal(exit.signal, 'SIGKILL');

  // Restarted: the half-copied temp file is gone and nothing of `big` is visible.
  const sat = await startSatellite(t, { dataDir, config: { log: { level: 'info' } } });
  assert.deepEqual(await readdir(ingest).catch(() => []), [], 'no temp file left');
  const missing = await fetch(`${sat.url}/v2/apps/big/manifests/v1`);
  assert.equal(missing.status, 404);
  await missing.arrayBuffer();

  // Import again (into the running satellite): what was stored is skipped, the rest imported.
  const again = await satelliteCli(sat.configFile, ['import', fx.bigBundle]);
  assert.equal(again.code, 0, again.stderr);
  const report = JSON.parse(again.stdout) as { blobsImported: number; blobsSkipped: number };
  assert.equal(report.blobsSkipped, killedWith);
  assert.equal(report.blobsImported, 7 - killedWith);
  const verify = await satelliteRun(sat.configFile, ['verify', '--json']);
  assert.equal(verify.code, 0, verify.stderr);
  const v = JSON.parse(verify.stdout) as { blobs: number; bad: unknown[]; brokenImages: unknown[] };
  assert.deepEqual([v.blobs, v.bad, v.brokenImages], [7, [], []]);
  const pulled = await makeTempDir(t, 'hs-live-pulled-');
  await skopeoCopy(`docker://${sat.host}/apps/big:v1`, `oci:${pulled}:big`);
  assert.equal(sha256(await skopeoInspect(`oci:${pulled}:big`, { raw: true })), fx.big.manifestDigest);
});

test('a bundle that appears in sync.bundleDir while the satellite runs (a stick mounted later) is imported once', async (t) => {
  const fx = await fixtures(t, 1);
  const mount = await makeTempDir(t, 'hs-live-mount-');
  const sat = await startSatellite(t, { config: { log: { level: 'info' }, sync: { bundleDir: mount, bundleWatchSeconds: 1 } } });
  // The stick's files arrive; bundle.json (what marks a bundle finished) last.
  await mkdir(join(mount, 'blobs'));
  await cp(join(fx.smallBundle, 'blobs'), join(mount, 'blobs'), { recursive: true });
  for (const f of ['oci-layout', 'index.json', 'bundle.json']) await cp(join(fx.smallBundle, f), join(mount, f));
  await sat.waitForLog(/"msg":"bundle imported"/, 15_000);
  const res = await fetch(`${sat.url}/v2/apps/small/manifests/v1`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(res.status, 200);
  assert.equal(sha256(Buffer.from(await res.arrayBuffer())), fx.small.manifestDigest);
  await sleep(2500);
  assert.equal(sat.logs().split('\n').filter((l) => l.includes('"msg":"bundle imported"')).length, 1, 'the same bundle is not imported again');
});

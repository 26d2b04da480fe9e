import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage, makeLayer, writeImage, writeIndex, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { blobFile, exists, getStatus, syncConfig, waitForGeneration, waitForStatus, writeDesired } from './helpers.ts';

const ARM = { os: 'linux', architecture: 'arm64' };
const AMD = { os: 'linux', architecture: 'amd64' };

test('replicates single-arch, filtered multi-arch and shared-base images; follows tag moves, removals and pins', async (t) => {
  const upstream = await startDockerRegistry(t, { accessLog: true });
  const layout = await makeTempDir(t, 'hs-fixture-');
  const single = await makeImage(layout, { tag: 'single', seed: 'sync-single', layerSizes: [200_000, 150_000, 100_000] });
  const amd = await makeImage(layout, { seed: 'sync-multi-amd', layerSizes: [300_000], platform: AMD });
  const arm = await makeImage(layout, { seed: 'sync-multi-arm', layerSizes: [250_000], platform: ARM });
  const index = await writeIndex(layout, { tag: 'multi', images: [amd, arm] });
  const base = await makeLayer('sync-shared-base', 500_000, { dir: layout });
  const appA = await writeImage(layout, { tag: 'a', layers: [base, await makeLayer('sync-app-a', 60_000, { dir: layout })], platform: AMD });
  const appB = await writeImage(layout, { tag: 'b', layers: [base, await makeLayer('sync-app-b', 70_000, { dir: layout })], platform: AMD });
  await skopeoCopy(`oci:${layout}:single`, `docker://${upstream.host}/fixtures/single:v1`);
  await skopeoCopy(`oci:${layout}:multi`, `docker://${upstream.host}/fixtures/multi:v1`, { all: true });
  await skopeoCopy(`oci:${layout}:a`, `docker://${upstream.host}/apps/a:v1`);
  await skopeoCopy(`oci:${layout}:b`, `docker://${upstream.host}/apps/b:v1`);

  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  const doc = (generation: number, images: object[]) => ({ generation, upstream: { url: upstream.url }, images });
  const all = [
    { repository: 'fixtures/single', tags: ['v1'] },
    { repository: 'fixtures/multi', tags: ['v1'], platforms: ['linux/arm64'] },
    { repository: 'apps/a', tags: ['v1'] },
    { repository: 'apps/b', tags: ['v1'] },
  ];
  await writeDesired(desired, doc(1, all));
  const sat = await startSatellite(t, { config: syncConfig(desired) });
  const s1 = await waitForGeneration(sat, 1);
  assert.equal(s1.sync.lastRun?.result, 'ok');
  assert.deepEqual(s1.sync.images.map((i) => i.status), ['ok', 'ok', 'ok', 'ok']);

  for (const [ref, digest] of [
    ['fixtures/single:v1', single.manifestDigest],
    ['fixtures/multi:v1', index.indexDigest],
    ['apps/a:v1', appA.manifestDigest],
    ['apps/b:v1', appB.manifestDigest],
  ] as const) {
    assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/${ref}`, { raw: true })), digest, ref);
  }
  // Platform filter: the index and the arm64 image only.
  const head = (path: string) => fetch(`${sat.url}${path}`, { method: 'HEAD' }).then((r) => r.status);
  assert.equal(await head(`/v2/fixtures/multi/manifests/${arm.manifestDigest}`), 200);
  assert.equal(await head(`/v2/fixtures/multi/manifests/${amd.manifestDigest}`), 404);
  assert.equal(await head(`/v2/fixtures/multi/blobs/${arm.layerDigests[0]}`), 200);
  assert.equal(await exists(blobFile(sat.dataDir, amd.layerDigests[0]!)), false);

  // Each byte over the WAN once: the shared base was fetched by one GET, and the bytes read
  // upstream are the distinct content (plus manifests and the index).
  const gets = upstream.logs().split('\n').filter((l) => l.includes(`GET /v2/apps/`) && l.includes(`/blobs/${base.digest}`));
  assert.equal(gets.length, 1, `shared base fetched ${gets.length} times`);
  const distinct = new Map<string, number>();
  for (const img of [single, arm, appA, appB]) {
    distinct.set(img.configDigest, img.config.length);
    for (const l of img.layers) distinct.set(l.digest, l.size);
  }
  const contentBytes = [...distinct.values()].reduce((a, b) => a + b, 0);
  const bytes = s1.sync.lastRun!.bytesFromUpstream;
  assert.ok(bytes >= contentBytes && bytes < contentBytes * 1.05 + 20_000, `read ${bytes} for ${contentBytes} bytes of content`);

  // Tag moves upstream: the next generation follows it and GC frees what only the old image used.
  const appA2 = await writeImage(layout, { tag: 'a2', layers: [base, await makeLayer('sync-app-a2', 80_000, { dir: layout })], platform: AMD });
  await skopeoCopy(`oci:${layout}:a2`, `docker://${upstream.host}/apps/a:v1`);
  await writeDesired(desired, doc(2, all));
  await waitForGeneration(sat, 2);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/apps/a:v1`, { raw: true })), appA2.manifestDigest);
  assert.equal(await exists(blobFile(sat.dataDir, appA.layerDigests[1]!)), false, 'the old app layer is collected');
  assert.equal(await head(`/v2/apps/a/manifests/${appA.manifestDigest}`), 404);
  assert.equal(await exists(blobFile(sat.dataDir, base.digest)), true, 'the shared base stays');

  // Removal: apps/b leaves the desired state.
  await writeDesired(desired, doc(3, all.filter((i) => i.repository !== 'apps/b')));
  const s3 = await waitForGeneration(sat, 3);
  assert.equal(await head('/v2/apps/b/manifests/v1'), 404);
  assert.equal(await exists(blobFile(sat.dataDir, appB.layerDigests[1]!)), false);
  assert.equal(await exists(blobFile(sat.dataDir, base.digest)), true, 'still used by apps/a');
  assert.ok(s3.sync.lastRun!.untagged >= 1 && s3.sync.lastRun!.gcBytesFreed > 0);

  // A pinned digest stays when its tag moves away upstream.
  await writeDesired(desired, doc(4, [...all.filter((i) => i.repository !== 'apps/b' && i.repository !== 'fixtures/single'), { repository: 'fixtures/single', tags: ['v1'], digests: [single.manifestDigest] }]));
  await waitForGeneration(sat, 4);
  await skopeoCopy(`oci:${layout}:b`, `docker://${upstream.host}/fixtures/single:v1`);
  await writeDesired(desired, doc(5, [...all.filter((i) => i.repository !== 'apps/b' && i.repository !== 'fixtures/single'), { repository: 'fixtures/single', tags: ['v1'], digests: [single.manifestDigest] }]));
  await waitForGeneration(sat, 5);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/fixtures/single:v1`, { raw: true })), appB.manifestDigest);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/fixtures/single@${single.manifestDigest}`, { raw: true })), single.manifestDigest);
  assert.equal(await exists(blobFile(sat.dataDir, single.layerDigests[2]!)), true);

  // Offline: the upstream goes away; everything stored is still served and the status says so.
  await upstream.stop();
  await writeDesired(desired, doc(6, all.filter((i) => i.repository !== 'apps/b')));
  const offline = await waitForStatus(sat, (s) => s.sync.lastRun?.generation === 6 && !s.sync.running);
  assert.equal(offline.sync.lastRun?.result, 'offline');
  assert.equal(offline.sync.upstream.reachable, false);
  assert.equal(offline.sync.appliedGeneration, 5);
  const out = await makeTempDir(t, 'hs-offline-copy-');
  await skopeoCopy(`docker://${sat.host}/fixtures/multi:v1`, `oci:${out}:m`, { extraArgs: ['--override-arch', 'arm64'] });
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/apps/a:v1`, { raw: true })), appA2.manifestDigest);
});

test('a malformed desired-state file is rejected and the last good state stays in force', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'sync-bad-doc', layerSizes: [10_000] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/keep/me:v1`);
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, { generation: 1, upstream: { url: upstream.url }, images: [{ repository: 'keep/me', tags: ['v1'] }] });
  const sat = await startSatellite(t, { config: syncConfig(desired) });
  await waitForGeneration(sat, 1);
  const mark = sat.proc.nextLine;
  await writeDesired(desired, { generation: 2, upstream: { url: upstream.url }, images: [{ repository: 'Bad Name' }] });
  await sat.waitForLog(/desired state rejected; keeping the last good one/, 10_000, mark);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(desired, '{ "generation": 3, ');
  await sat.waitForLog(/is not valid JSON/, 10_000, mark);
  const status = await getStatus(sat);
  assert.equal(status.sync.desiredGeneration, 1);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/keep/me:v1`, { raw: true })), img.manifestDigest);
  // An older generation than the one in force is refused too.
  await writeDesired(desired, { generation: 0, upstream: { url: upstream.url }, images: [] });
  await sat.waitForLog(/generation 0 is older than 1/, 10_000, mark);
  assert.equal((await getStatus(sat)).sync.desiredGeneration, 1);
});

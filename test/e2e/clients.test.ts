import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { freePort } from '../helpers/ports.ts';
import { hostPlatform, makeImage, makeLayer, writeImage, writeIndex, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { startContainerd, writeHostsToml } from '../helpers/containerd.ts';

async function countBlobFiles(dataDir: string): Promise<number> {
  let n = 0;
  for (const prefix of await readdir(join(dataDir, 'blobs', 'sha256'))) {
    n += (await readdir(join(dataDir, 'blobs', 'sha256', prefix))).length;
  }
  return n;
}

test('skopeo pushes single-arch, multi-arch and shared-base images and copies them back identical', async (t) => {
  const layout = await makeTempDir(t, 'hs-fixture-');
  const single = await makeImage(layout, { tag: 'single', seed: 'single', layerSizes: [300_000, 200_000, 100_000] });
  const amd = await makeImage(layout, { seed: 'multi-amd64', layerSizes: [150_000], platform: { os: 'linux', architecture: 'amd64' } });
  const arm = await makeImage(layout, { seed: 'multi-arm64', layerSizes: [150_000], platform: { os: 'linux', architecture: 'arm64' } });
  const index = await writeIndex(layout, { tag: 'multi', images: [amd, arm] });
  const base = await makeLayer('shared-base', 400_000, { dir: layout });
  const appA = await writeImage(layout, { tag: 'a', layers: [base, await makeLayer('app-a', 50_000, { dir: layout })], platform: hostPlatform() });
  const appB = await writeImage(layout, { tag: 'b', layers: [base, await makeLayer('app-b', 50_000, { dir: layout })], platform: hostPlatform() });

  const sat = await startSatellite(t);
  await skopeoCopy(`oci:${layout}:single`, `docker://${sat.host}/fixtures/single:v1`);
  await skopeoCopy(`oci:${layout}:multi`, `docker://${sat.host}/fixtures/multi:v1`, { all: true });
  await skopeoCopy(`oci:${layout}:a`, `docker://${sat.host}/apps/a:v1`);
  await skopeoCopy(`oci:${layout}:b`, `docker://${sat.host}/apps/b:v1`);

  const expected: Array<[string, string, Buffer]> = [
    ['fixtures/single:v1', single.manifestDigest, single.manifest],
    ['fixtures/multi:v1', index.indexDigest, index.index],
    ['apps/a:v1', appA.manifestDigest, appA.manifest],
    ['apps/b:v1', appB.manifestDigest, appB.manifest],
  ];
  for (const [ref, digest, bytes] of expected) {
    const raw = await skopeoInspect(`docker://${sat.host}/${ref}`, { raw: true });
    assert.equal(sha256(raw), digest, `${ref} served with the pushed digest`);
    assert.deepEqual(raw, bytes);
  }

  // The shared base layer is stored once: count every distinct blob pushed.
  const distinct = new Set([
    ...[single, amd, arm, appA, appB].flatMap((i) => [i.manifestDigest, i.configDigest, ...i.layerDigests]),
    index.indexDigest,
  ]);
  const blobsOnly = new Set([...[single, amd, arm, appA, appB].flatMap((i) => [i.configDigest, ...i.layerDigests])]);
  assert.ok(distinct.size > blobsOnly.size);
  assert.equal(await countBlobFiles(sat.dataDir), blobsOnly.size, 'one file per distinct blob; manifests live in the index');

  // Copy everything back out into fresh OCI layouts: the digests must be identical.
  const out = await makeTempDir(t, 'hs-copyback-');
  await skopeoCopy(`docker://${sat.host}/fixtures/multi:v1`, `oci:${out}:multi`, { all: true });
  await skopeoCopy(`docker://${sat.host}/fixtures/single:v1`, `oci:${out}:single`);
  await skopeoCopy(`docker://${sat.host}/apps/b:v1`, `oci:${out}:b`);
  const outIndex = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
  };
  const byTag = new Map(outIndex.manifests.map((m) => [m.annotations?.['org.opencontainers.image.ref.name'], m.digest]));
  assert.equal(byTag.get('multi'), index.indexDigest);
  assert.equal(byTag.get('single'), single.manifestDigest);
  assert.equal(byTag.get('b'), appB.manifestDigest);
  for (const layer of [...single.layers, ...arm.layers, base]) {
    const copied = await readFile(join(out, 'blobs', 'sha256', layer.digest.slice(7)));
    assert.equal(sha256(copied), layer.digest);
  }
});

test('containerd pulls an image whose upstream does not resolve, through a hosts.toml mirror to the satellite', async (t) => {
  const layout = await makeTempDir(t, 'hs-fixture-');
  const amd = await makeImage(layout, { seed: 'ctr-amd64', layerSizes: [200_000, 100_000], platform: { os: 'linux', architecture: 'amd64' } });
  const arm = await makeImage(layout, { seed: 'ctr-arm64', layerSizes: [200_000], platform: { os: 'linux', architecture: 'arm64' } });
  const index = await writeIndex(layout, { tag: 'multi', images: [amd, arm] });
  const host = process.arch === 'arm64' ? arm : amd;
  await writeImage(layout, { tag: 'single', layers: host.layers, platform: host.platform });

  const sat = await startSatellite(t);
  await skopeoCopy(`oci:${layout}:single`, `docker://${sat.host}/fixtures/app:v1`);
  await skopeoCopy(`oci:${layout}:multi`, `docker://${sat.host}/fixtures/app:multi`, { all: true });

  const containerd = await startContainerd(t);
  const hostsDir = await makeTempDir(t, 'hs-hosts-');
  // server is a closed loopback port: if the mirror failed, the pull would fail, not go elsewhere.
  const closed = await freePort();
  await writeHostsToml(hostsDir, 'upstream.test:5000', {
    server: `http://127.0.0.1:${closed}`,
    mirrors: [{ url: `http://${sat.host}`, capabilities: ['pull', 'resolve'] }],
  });
  const single = await containerd.pull('upstream.test:5000/fixtures/app:v1', { hostsDir });
  assert.equal(single, host.manifestDigest);
  const multi = await containerd.pull('upstream.test:5000/fixtures/app:multi', { hostsDir });
  assert.equal(multi, index.indexDigest);
  // containerd tells a mirror which upstream it meant: the satellite saw those requests.
  assert.match(sat.logs(), /"path":"\/v2\/fixtures\/app\/manifests\/v1\?ns=upstream\.test(%3A|:)5000"/);
  assert.match(sat.logs(), new RegExp(`"path":"/v2/fixtures/app/blobs/${host.layerDigests[0]}\\?ns=`));
});

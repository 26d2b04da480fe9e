import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { hostPlatform, makeLayer, sha256, writeImage, writeIndex } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { offlineConfig, satelliteCli, satelliteRun, storedBlobs } from './helpers.ts';
import { layoutRef } from '../../src/bundle/oci-layout.ts';

const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';

test('layoutRef: bare tags need a repository; full references keep their path, drop the registry host', () => {
  const d = `sha256:${'a'.repeat(64)}`;
  assert.deepEqual(layoutRef('1.4', d, { repository: 'apps/app' }), { repository: 'apps/app', reference: '1.4' });
  assert.deepEqual(layoutRef('apps/app:1.4', d, {}), { repository: 'apps/app', reference: '1.4' });
  assert.deepEqual(layoutRef('registry.example:5000/apps/app:1.4', d, { repository: 'ignored' }), { repository: 'apps/app', reference: '1.4' });
  assert.deepEqual(layoutRef('localhost/app', d, {}), { repository: 'app', reference: 'latest' });
  assert.deepEqual(layoutRef(`apps/app@${d}`, d, {}), { repository: 'apps/app', reference: d });
  assert.deepEqual(layoutRef(undefined, d, { repository: 'apps/app' }), { repository: 'apps/app', reference: d });
  assert.throws(() => layoutRef('1.4', d, {}), (e: Error & { code?: string }) => e.code === 'BUNDLE_INVALID' && /bare tag "1.4".*--repository.*sync\.layoutRepository/.test(e.message));
  assert.throws(() => layoutRef('Apps/App:1', d, {}), /not a valid repository name/);
  assert.throws(() => layoutRef(`apps/app@sha256:${'b'.repeat(64)}`, d, {}), /not a valid tag \(or this manifest's digest\)/);
});

test('plain OCI layout written by skopeo: imported at first start via sync.bundleDir with no upstream; damaged and unsigned refused', async (t) => {
  // Upstream images: one and two share a base layer; multi is a two-platform index.
  const upstream = await startDockerRegistry(t);
  const fixture = await makeTempDir(t, 'hs-layout-fixture-');
  const platform = hostPlatform();
  const base = await makeLayer('layout-base', 300_000, { dir: fixture });
  const one = await writeImage(fixture, { tag: 'one', layers: [base, await makeLayer('layout-one', 40_000, { dir: fixture })], platform });
  const two = await writeImage(fixture, { tag: 'two', layers: [base, await makeLayer('layout-two', 40_000, { dir: fixture })], platform });
  const amd = await writeImage(fixture, { layers: [await makeLayer('layout-multi-amd64', 20_000, { dir: fixture })], platform: { os: 'linux', architecture: 'amd64' } });
  const arm = await writeImage(fixture, { layers: [await makeLayer('layout-multi-arm64', 20_000, { dir: fixture })], platform: { os: 'linux', architecture: 'arm64' } });
  const multi = await writeIndex(fixture, { tag: 'multi', images: [amd, arm] });
  await skopeoCopy(`oci:${fixture}:one`, `docker://${upstream.host}/apps/one:v1`);
  await skopeoCopy(`oci:${fixture}:two`, `docker://${upstream.host}/apps/two:v1`);
  await skopeoCopy(`oci:${fixture}:multi`, `docker://${upstream.host}/apps/multi:v1`, { all: true });

  // What an operator does on a machine with a link: skopeo into one OCI layout directory; ref names
  // a bare tag (needs sync.layoutRepository), a full reference, and one with the registry host.
  const layout = await makeTempDir(t, 'hs-layout-');
  await skopeoCopy(`docker://${upstream.host}/apps/one:v1`, `oci:${layout}:1.0`);
  await skopeoCopy(`docker://${upstream.host}/apps/two:v1`, `oci:${layout}:apps/two:v1`);
  await skopeoCopy(`docker://${upstream.host}/apps/multi:v1`, `oci:${layout}:${upstream.host}/apps/multi:v1`, { all: true });
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: unknown[] };
  assert.equal(index.manifests.length, 3);

  // Unsigned content: a satellite that requires signed bundles refuses it, naming why; nothing stored.
  const strictData = await makeTempDir(t, 'hs-layout-strict-');
  const strict = await satelliteCli(await offlineConfig(t, strictData, { sync: { requireSignedBundles: true, layoutRepository: 'apps/one' } }), ['import', layout]);
  assert.equal(strict.code, 1, strict.stderr);
  assert.match(strict.stderr, /BUNDLE_UNSIGNED: .* is a plain OCI image layout .*nothing signs it.*sync\.requireSignedBundles/);
  assert.deepEqual(await storedBlobs(strictData), []);

  // A bare tag with no repository configured: a clear error, nothing stored.
  const noRepoData = await makeTempDir(t, 'hs-layout-norepo-');
  const noRepo = await satelliteCli(await offlineConfig(t, noRepoData), ['import', layout]);
  assert.equal(noRepo.code, 1);
  assert.match(noRepo.stderr, /BUNDLE_INVALID: index\.json names sha256:[0-9a-f]{64} by the bare tag "1\.0": give the repository/);
  assert.deepEqual(await storedBlobs(noRepoData), []);

  // First boot: no upstream, no desired state; the layout is imported before the registry listens.
  const sat = await startSatellite(t, { config: { sync: { bundleDir: layout, layoutRepository: 'apps/one' } } });
  assert.match(sat.logs(), /"format":"oci-layout".*"imported":3.*"bundleSignature":\{"status":"unsigned"\}.*"msg":"bundle imported"/);
  assert.doesNotMatch(sat.logs(), /"desired":/, 'a plain layout never carries a desired state');
  for (const [ref, digest] of [['apps/one:1.0', one.manifestDigest], ['apps/two:v1', two.manifestDigest], ['apps/multi:v1', multi.indexDigest]] as const) {
    assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/${ref}`, { raw: true })), digest, ref);
  }
  // skopeo pulls every platform of the index from the satellite, digests intact.
  const pulled = await makeTempDir(t, 'hs-layout-pulled-');
  await skopeoCopy(`docker://${sat.host}/apps/multi:v1`, `oci:${pulled}:multi`, { all: true });
  await skopeoCopy(`docker://${sat.host}/apps/one:1.0`, `oci:${pulled}:one`);
  assert.equal(sha256(await skopeoInspect(`oci:${pulled}:multi`, { raw: true })), multi.indexDigest);
  for (const img of [amd, arm, one]) {
    assert.equal(sha256(await readFile(join(pulled, 'blobs', 'sha256', img.layerDigests.at(-1)!.slice(7)))), img.layerDigests.at(-1));
  }
  // The shared base stored once: base + 2 app layers + 2 configs, and 2 layers + 2 configs of multi.
  const stored = await storedBlobs(sat.dataDir);
  assert.equal(stored.length, 9);
  assert.equal(stored.filter((h) => `sha256:${h}` === base.digest).length, 1);

  // Later, a stick with a new image whose layer has a flipped byte: refused whole, naming the digest;
  // nothing of that image visible; what was stored before intact and served.
  const three = await writeImage(fixture, { tag: 'three', layers: [base, await makeLayer('layout-three', 60_000, { dir: fixture })], platform });
  await skopeoCopy(`oci:${fixture}:three`, `docker://${upstream.host}/apps/three:v1`);
  const bad = join(await makeTempDir(t, 'hs-layout-bad-'), 'stick');
  await cp(layout, bad, { recursive: true });
  await skopeoCopy(`docker://${upstream.host}/apps/three:v1`, `oci:${bad}:apps/three:v1`);
  const victim = three.layerDigests[1]!;
  const victimPath = join(bad, 'blobs', 'sha256', victim.slice(7));
  const data = await readFile(victimPath);
  data[1000] = data[1000]! ^ 0x01;
  await writeFile(victimPath, data);
  const damaged = await satelliteCli(sat.configFile, ['import', bad]);
  assert.equal(damaged.code, 1, damaged.stdout);
  assert.match(damaged.stderr, new RegExp(`BUNDLE_DAMAGED: bundle file blobs/sha256/${victim.slice(7)} does not hash to ${victim}`));
  for (const path of [`apps/three/manifests/v1`, `apps/three/manifests/${three.manifestDigest}`, `apps/three/blobs/${three.configDigest}`, `apps/three/blobs/${victim}`]) {
    const res = await fetch(`${sat.url}/v2/${path}`, { headers: { accept: MANIFEST_ACCEPT } });
    await res.arrayBuffer();
    assert.equal(res.status, 404, path);
  }
  assert.equal((await storedBlobs(sat.dataDir)).length, 9, 'nothing of the damaged layout written');
  const verify = await satelliteRun(sat.configFile, ['verify', '--json']);
  assert.equal(verify.code, 0, verify.stderr);
  const v = JSON.parse(verify.stdout) as { blobs: number; bad: unknown[]; brokenImages: unknown[] };
  assert.deepEqual([v.blobs, v.bad, v.brokenImages], [9, [], []]);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/apps/two:v1`, { raw: true })), two.manifestDigest);

  // The intact layout of the same images imports into the running satellite (admin socket): only three's new blobs.
  const good = join(await makeTempDir(t, 'hs-layout-good-'), 'stick');
  await cp(layout, good, { recursive: true });
  await skopeoCopy(`docker://${upstream.host}/apps/three:v1`, `oci:${good}:apps/three:v1`);
  const ok = await satelliteCli(sat.configFile, ['import', good]);
  assert.equal(ok.code, 0, ok.stderr);
  const report = JSON.parse(ok.stdout) as { format: string; blobsImported: number; images: Array<{ repository: string; status: string }> };
  assert.equal(report.format, 'oci-layout');
  assert.equal(report.blobsImported, 2, "three's layer and config");
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/apps/three:v1`, { raw: true })), three.manifestDigest);
});

test('a plain OCI layout that skopeo writes into a watched sync.bundleDir is imported once, and again when it grows', async (t) => {
  const fixture = await makeTempDir(t, 'hs-layout-watch-fixture-');
  const platform = hostPlatform();
  const base = await makeLayer('layout-watch-base', 100_000, { dir: fixture });
  const a = await writeImage(fixture, { tag: 'a', layers: [base, await makeLayer('layout-watch-a', 10_000, { dir: fixture })], platform });
  const b = await writeImage(fixture, { tag: 'b', layers: [base, await makeLayer('layout-watch-b', 10_000, { dir: fixture })], platform });
  const mount = await makeTempDir(t, 'hs-layout-watch-');
  const sat = await startSatellite(t, { config: { sync: { bundleDir: mount, bundleWatchSeconds: 1, layoutRepository: 'apps/watched' } } });
  await skopeoCopy(`oci:${fixture}:a`, `oci:${mount}:1.0`);
  await sat.waitForLog(/"format":"oci-layout".*"imported":1.*"msg":"bundle imported"/, 15_000);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/apps/watched:1.0`, { raw: true })), a.manifestDigest);
  await skopeoCopy(`oci:${fixture}:b`, `oci:${mount}:apps/other:v2`);
  await sat.waitForLog(/"format":"oci-layout".*"imported":2.*"blobsImported":2.*"msg":"bundle imported"/, 15_000);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/apps/other:v2`, { raw: true })), b.manifestDigest);
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(sat.logs().split('\n').filter((l) => l.includes('"msg":"bundle imported"')).length, 2, 'each version of index.json imported once');
});

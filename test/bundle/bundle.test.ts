import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { offlineConfig, satelliteCli, storedBlobs, syncedThreeApps } from './helpers.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';

test('bundle: export from satellite A, import into satellite B with no upstream; damaged bundles refused whole; policy applied', async (t) => {
  // Satellite A syncs the three images (and, under a warn policy, replicates a's signature).
  const { base, apps, cosign: key, sig, dir, satA } = await syncedThreeApps(t, 'bundle', 1);

  const bundle = join(await makeTempDir(t, 'hs-bundle-'), 'stick');
  const cfgA = await offlineConfig(t, await makeTempDir(t, 'hs-unused-'));
  const created = await satelliteCli(cfgA, ['create', '--from', satA.url, '--image', 'apps/a:v1', '--image', 'apps/b:v1', '--image', 'apps/c:v1', '-o', bundle]);
  assert.equal(created.code, 0, created.stderr);
  const summary = JSON.parse(created.stdout) as { images: number; blobs: number; bytes: number };
  assert.equal(summary.images, 3);

  // The shared base is stored once: blobs = 1 base + 3 app layers + 3 configs + 3 manifests + a's signature (manifest, payload, config).
  const manifest = JSON.parse(await readFile(join(bundle, 'bundle.json'), 'utf8')) as { images: Array<{ repository: string; signature?: { digest: string } }>; files: Array<{ path: string; size: number }> };
  const blobFiles = await readdir(join(bundle, 'blobs', 'sha256'));
  assert.equal(blobFiles.length, 13);
  assert.equal(blobFiles.filter((f) => `sha256:${f}` === base.digest).length, 1);
  const onDisk = (await Promise.all(blobFiles.map((f) => stat(join(bundle, 'blobs', 'sha256', f))))).reduce((n, s) => n + s.size, 0);
  assert.equal(onDisk, summary.bytes, "bundle.json sizes are the bytes on the stick");
  assert.ok(onDisk < 400_000 * 2, `the base is carried once: ${onDisk} bytes for three images`);
  assert.equal(manifest.images.find((i) => i.repository === 'apps/a')?.signature?.digest, sig.manifestDigest);
  // A plain OCI layout: skopeo reads an image of it by its ref name.
  assert.equal(sha256(await skopeoInspect(`oci:${bundle}:apps/b:v1`, { raw: true })), apps[1]!.img.manifestDigest);

  // Damaged copies: a flipped byte, a truncated file, a missing file. Refused whole, digest named, nothing stored.
  const layerA = apps[0]!.img.layerDigests[1]!;
  const damage: Array<[string, (d: string) => Promise<void>, RegExp]> = [
    ['flipped byte', async (d) => {
      const p = join(d, 'blobs', 'sha256', layerA.slice(7));
      const data = await readFile(p);
      data[100] = data[100]! ^ 0xff;
      await writeFile(p, data);
    }, new RegExp(`does not hash to ${layerA}`)],
    ['truncated', (d) => truncate(join(d, 'blobs', 'sha256', base.digest.slice(7)), 1000), new RegExp(`is 1000 bytes.*${base.digest}`)],
    ['missing part', async (d) => {
      const { rm } = await import('node:fs/promises');
      await rm(join(d, 'blobs', 'sha256', layerA.slice(7)));
    }, new RegExp(`${layerA}\\) is missing`)],
  ];
  for (const [what, harm, message] of damage) {
    const copy = join(await makeTempDir(t, 'hs-bundle-bad-'), 'stick');
    await cp(bundle, copy, { recursive: true });
    await harm(copy);
    const dataDir = await makeTempDir(t, 'hs-sat-bad-');
    const res = await satelliteCli(await offlineConfig(t, dataDir), ['import', copy]);
    assert.equal(res.code, 1, what);
    assert.match(res.stderr, /BUNDLE_DAMAGED/, what);
    assert.match(res.stderr, message, what);
    assert.deepEqual(await storedBlobs(dataDir), [], `${what}: nothing imported`);
  }

  // Enforce with the key: a (signed) is imported with its signature; b and c are refused.
  const dataC = await makeTempDir(t, 'hs-sat-c-');
  const trustFile = join(dir, 'trust.json');
  await writeFile(trustFile, JSON.stringify([{ name: 'edge', mode: 'enforce', keys: [key.publicKeyPem] }]));
  const enforced = await satelliteCli(await offlineConfig(t, dataC), ['import', bundle, '--trust', trustFile]);
  assert.equal(enforced.code, 1, enforced.stderr);
  const er = JSON.parse(enforced.stdout) as { images: Array<{ repository: string; status: string; code?: string; signature?: string }> };
  assert.deepEqual(er.images.map((i) => [i.repository, i.status, i.code ?? null, i.signature]), [
    ['apps/a', 'imported', null, 'verified'],
    ['apps/b', 'refused', 'SIGNATURE_REQUIRED', 'unsigned'],
    ['apps/c', 'refused', 'SIGNATURE_REQUIRED', 'unsigned'],
  ]);

  // Satellite B: no upstream, no desired state. Import, import again (nothing re-read), then serve.
  const dataB = await makeTempDir(t, 'hs-sat-b-');
  const cfgB = await offlineConfig(t, dataB);
  const first = await satelliteCli(cfgB, ['import', bundle]);
  assert.equal(first.code, 0, first.stderr);
  const r1 = JSON.parse(first.stdout) as { blobsImported: number; blobsSkipped: number };
  assert.equal(r1.blobsImported, 7, 'base + 3 layers + 3 configs');
  const again = await satelliteCli(cfgB, ['import', bundle]);
  const r2 = JSON.parse(again.stdout) as { blobsImported: number; blobsSkipped: number };
  assert.equal(r2.blobsImported, 0);
  assert.equal(r2.blobsSkipped, 9, 'every image blob already stored (the base counted per image)');

  const satB = await startSatellite(t, { dataDir: dataB });
  for (const { name, img } of apps) {
    assert.equal(sha256(await skopeoInspect(`docker://${satB.host}/apps/${name}:v1`, { raw: true })), img.manifestDigest, name);
  }
  const pulled = await makeTempDir(t, 'hs-pulled-');
  await skopeoCopy(`docker://${satB.host}/apps/c:v1`, `oci:${pulled}:c`);
  assert.equal(sha256(await readFile(join(pulled, 'blobs', 'sha256', base.digest.slice(7)))), base.digest);
  // a's signature travelled with it: B serves it at the cosign tag.
  const sigRes = await fetch(`${satB.url}/v2/apps/a/manifests/${sig.tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(sigRes.status, 200);
  assert.equal(sha256(Buffer.from(await sigRes.arrayBuffer())), sig.manifestDigest);

  // First boot without a link: sync.bundleDir is imported at start, before anything waits for one.
  const satD = await startSatellite(t, { config: { sync: { bundleDir: bundle } } });
  await satD.waitForLog(/"msg":"bundle imported"/);
  assert.equal(sha256(await skopeoInspect(`docker://${satD.host}/apps/b:v1`, { raw: true })), apps[1]!.img.manifestDigest);
});

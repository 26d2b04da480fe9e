import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { makeCosignKey, pushCosignSignature } from '../helpers/cosign-sign.ts';
import { offlineConfig, satelliteCli } from './helpers.ts';

const COSIGN_SIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

test('signatures held as OCI 1.1 referrers travel in bundles: export, import, listed by the referrers API, admitted by an enforce policy', async (t) => {
  // Satellite A holds an image whose only signature is a referrer (pushed by digest, no tag).
  const satA = await startSatellite(t);
  const layout = await makeTempDir(t, 'hs-ref-fixture-');
  const img = await makeImage(layout, { tag: 'app', seed: 'bundle-referrers', layerSizes: [30_000] });
  await makeImage(layout, { tag: 'plain', seed: 'bundle-referrers-plain', layerSizes: [30_000] });
  await skopeoCopy(`oci:${layout}:app`, `docker://${satA.host}/apps/signed:v1`);
  await skopeoCopy(`oci:${layout}:plain`, `docker://${satA.host}/apps/plain:v1`);
  const size = (await skopeoInspect(`docker://${satA.host}/apps/signed:v1`, { raw: true })).length;
  const key = makeCosignKey();
  const sig = await pushCosignSignature(satA, 'apps/signed', img.manifestDigest, key.privateKey, { referrer: { subjectSize: size, subjectMediaType: OCI_MANIFEST, fallbackTag: false } });
  const tagSig = await fetch(`${satA.url}/v2/apps/signed/manifests/${sig.tag}`);
  await tagSig.arrayBuffer();
  assert.equal(tagSig.status, 404, 'no tag-scheme signature: only the referrer');

  // Export from A's store (through its admin socket) and create from A as a registry (its referrers API).
  const exported = join(await makeTempDir(t, 'hs-ref-export-'), 'stick');
  const ex = await satelliteCli(satA.configFile, ['export', '--image', 'apps/signed:v1', '--image', 'apps/plain:v1', '-o', exported]);
  assert.equal(ex.code, 0, ex.stderr);
  const created = join(await makeTempDir(t, 'hs-ref-create-'), 'stick');
  const cr = await satelliteCli(await offlineConfig(t, await makeTempDir(t, 'hs-ref-unused-')), ['create', '--from', satA.url, '--image', 'apps/signed:v1', '-o', created]);
  assert.equal(cr.code, 0, cr.stderr);
  for (const dir of [exported, created]) {
    const contents = JSON.parse(await readFile(join(dir, 'bundle.json'), 'utf8')) as { images: Array<{ repository: string; referrers?: Array<{ digest: string; artifactType: string }> }>; files: Array<{ digest: string }> };
    const signed = contents.images.find((i) => i.repository === 'apps/signed');
    assert.deepEqual(signed?.referrers?.map((r) => [r.digest, r.artifactType]), [[sig.manifestDigest, COSIGN_SIG]], dir);
    assert.ok(contents.files.some((f) => f.digest === sig.manifestDigest), 'the referrer manifest is a listed file');
    assert.ok(contents.files.some((f) => f.digest === sha256(sig.payload)), 'and its payload');
    assert.equal(contents.images.find((i) => i.repository === 'apps/plain')?.referrers, undefined);
  }

  // Import with an enforce policy and the key: the signed image is admitted on its referrer; the other refused.
  const dir = await makeTempDir(t, 'hs-ref-trust-');
  const trustFile = join(dir, 'trust.json');
  await writeFile(trustFile, JSON.stringify([{ name: 'edge', mode: 'enforce', keys: [key.publicKeyPem] }]));
  const dataB = await makeTempDir(t, 'hs-ref-b-');
  const imported = await satelliteCli(await offlineConfig(t, dataB), ['import', exported, '--trust', trustFile]);
  assert.equal(imported.code, 1, 'apps/plain is refused');
  const report = JSON.parse(imported.stdout) as { images: Array<{ repository: string; status: string; code?: string; signature?: string }> };
  assert.deepEqual(report.images.map((i) => [i.repository, i.status, i.code ?? null, i.signature]), [
    ['apps/signed', 'imported', null, 'verified'],
    ['apps/plain', 'refused', 'SIGNATURE_REQUIRED', 'unsigned'],
  ]);

  // Another key: the referrer does not verify.
  const otherFile = join(dir, 'other.json');
  await writeFile(otherFile, JSON.stringify([{ name: 'edge', mode: 'enforce', keys: [makeCosignKey().publicKeyPem] }]));
  const other = await satelliteCli(await offlineConfig(t, await makeTempDir(t, 'hs-ref-c-')), ['import', created, '--trust', otherFile]);
  assert.equal(other.code, 1);
  assert.deepEqual((JSON.parse(other.stdout) as typeof report).images.map((i) => [i.status, i.signature]), [['refused', 'invalid']]);

  // B (no upstream) serves the image and lists the signature in its referrers API, with its payload.
  const satB = await startSatellite(t, { dataDir: dataB });
  assert.equal(sha256(await skopeoInspect(`docker://${satB.host}/apps/signed:v1`, { raw: true })), img.manifestDigest);
  const res = await fetch(`${satB.url}/v2/apps/signed/referrers/${img.manifestDigest}`);
  assert.equal(res.status, 200);
  const index = (await res.json()) as { manifests: Array<{ digest: string; artifactType?: string }> };
  assert.deepEqual(index.manifests.map((m) => [m.digest, m.artifactType]), [[sig.manifestDigest, COSIGN_SIG]]);
  const manifest = await fetch(`${satB.url}/v2/apps/signed/manifests/${sig.manifestDigest}`, { headers: { accept: OCI_MANIFEST } });
  assert.equal(sha256(Buffer.from(await manifest.arrayBuffer())), sig.manifestDigest);
  const payload = await fetch(`${satB.url}/v2/apps/signed/blobs/${sha256(sig.payload)}`);
  assert.equal(sha256(Buffer.from(await payload.arrayBuffer())), sha256(sig.payload));

  // B exports again: the referrer travels on (read from B's store by its subject).
  const again = join(await makeTempDir(t, 'hs-ref-again-'), 'stick');
  const ex2 = await satelliteCli(satB.configFile, ['export', '--all', '-o', again]);
  assert.equal(ex2.code, 0, ex2.stderr);
  const c2 = JSON.parse(await readFile(join(again, 'bundle.json'), 'utf8')) as { images: Array<{ repository: string; referrers?: Array<{ digest: string }> }> };
  assert.deepEqual(c2.images.map((i) => [i.repository, i.referrers?.map((r) => r.digest)]), [['apps/signed', [sig.manifestDigest]]]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { makeCosignKey, pushCosignSignature } from '../helpers/cosign-sign.ts';
import { getStatus, syncConfig, waitForStatus, writeDesired, type StatusDoc } from '../sync/helpers.ts';
import { metricsUrl, parseMetrics, promtoolCheck, scrape, value } from '../observability/helpers.ts';

const REPOS = ['apps/signed', 'apps/unsigned', 'apps/otherkey', 'apps/wrongdigest', 'apps/tampered', 'apps/identity', 'apps/referrer'] as const;

test('signature policy: enforce admits only images with a valid cosign signature, warn flags, key rotation re-checks', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const keyA = makeCosignKey();
  const keyB = makeCosignKey();
  const digests = new Map<string, string>();
  for (const repo of REPOS) {
    const img = await makeImage(layout, { tag: repo.replace('/', '-'), seed: `trust-${repo}`, layerSizes: [30_000] });
    await skopeoCopy(`oci:${layout}:${repo.replace('/', '-')}`, `docker://${upstream.host}/${repo}:v1`);
    digests.set(repo, img.manifestDigest);
  }
  const d = (repo: string) => digests.get(repo)!;
  const signedSig = await pushCosignSignature(upstream, 'apps/signed', d('apps/signed'), keyA.privateKey);
  await pushCosignSignature(upstream, 'apps/otherkey', d('apps/otherkey'), keyB.privateKey);
  // A valid signature by the trusted key, but of another image, stored under this image's tag.
  await pushCosignSignature(upstream, 'apps/wrongdigest', d('apps/signed'), keyA.privateKey, { storeFor: d('apps/wrongdigest') });
  // Signed, then the payload swapped (names this image, but is not the bytes the key signed).
  await pushCosignSignature(upstream, 'apps/tampered', d('apps/signed'), keyA.privateKey, {
    payload: Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': `${upstream.host}/apps/tampered` }, image: { 'docker-manifest-digest': d('apps/tampered') }, type: 'cosign container image signature' }, optional: null })),
    storeFor: d('apps/tampered'),
  });
  // Signed by the trusted key for the right digest, but as another repository.
  await pushCosignSignature(upstream, 'apps/identity', d('apps/identity'), keyA.privateKey, { dockerReference: `${upstream.host}/apps/other:v1` });

  // OCI 1.1: a referrer (subject = the image) listed in the referrers fallback tag.
  const refSig = await pushCosignSignature(upstream, 'apps/referrer', d('apps/referrer'), keyA.privateKey, {
    referrer: { subjectSize: (await skopeoInspect(`docker://${upstream.host}/apps/referrer:v1`, { raw: true })).length, subjectMediaType: 'application/vnd.oci.image.manifest.v1+json' },
  });

  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  const doc = (generation: number, mode: 'enforce' | 'warn', keys: string[]) => ({
    generation,
    upstream: { url: upstream.url },
    images: REPOS.map((repository) => ({ repository, tags: ['v1'] })),
    trust: [{ name: 'edge', mode, keys }],
  });
  await writeDesired(desired, doc(1, 'enforce', [keyA.publicKeyPem]));
  const sat = await startSatellite(t, { config: syncConfig(desired) });
  const ran = (g: number) => (s: StatusDoc) => s.sync.lastRun?.generation === g && !s.sync.running && s.sync.images.length === REPOS.length;
  const s1 = await waitForStatus(sat, ran(1));
  const img = (s: StatusDoc, repo: string) => s.sync.images.find((i) => i.repository === repo)!;
  const head = (path: string) => fetch(`${sat.url}${path}`, { method: 'HEAD' }).then((r) => r.status);

  // enforce: the signed image is committed, verified by key A, and its signature replicated.
  assert.equal(img(s1, 'apps/signed').status, 'ok');
  assert.equal(img(s1, 'apps/signed').signature, 'verified');
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/apps/signed:v1`, { raw: true })), d('apps/signed'));
  const replicated = await fetch(`${sat.url}/v2/apps/signed/manifests/${signedSig.tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  assert.equal(replicated.status, 200);
  assert.equal(sha256(Buffer.from(await replicated.arrayBuffer())), signedSig.manifestDigest, 'the satellite serves the upstream signature manifest byte for byte');
  assert.equal(await head(`/v2/apps/signed/blobs/${sha256(signedSig.payload)}`), 200, 'and its payload');

  // The referrer-stored signature verifies too, and the referrer and its fallback index are replicated.
  assert.equal(img(s1, 'apps/referrer').status, 'ok');
  assert.equal(img(s1, 'apps/referrer').signature, 'verified');
  assert.equal(await head(`/v2/apps/referrer/manifests/${refSig.manifestDigest}`), 200);
  assert.equal(await head(`/v2/apps/referrer/manifests/${refSig.tag}`), 200);

  const refused: Array<[string, string, RegExp]> = [
    ['apps/unsigned', 'SIGNATURE_REQUIRED', /no signature/],
    ['apps/otherkey', 'SIGNATURE_INVALID', /does not verify with any trusted key/],
    ['apps/wrongdigest', 'SIGNATURE_INVALID', /signed payload is for sha256:/],
    ['apps/tampered', 'SIGNATURE_INVALID', /does not verify/],
    ['apps/identity', 'SIGNATURE_INVALID', /names .*apps\/other/],
  ];
  for (const [repo, code, reason] of refused) {
    const i = img(s1, repo);
    assert.equal(i.status, 'failed', repo);
    assert.equal(i.code, code, repo);
    assert.match(i.reason ?? '', reason, repo);
    assert.equal(await head(`/v2/${repo}/manifests/v1`), 404, `${repo} is not served`);
    assert.equal(await head(`/v2/${repo}/manifests/${d(repo)}`), 404, `${repo} is not stored`);
  }
  assert.equal(s1.sync.appliedGeneration, null, 'a generation with refused images is not applied');
  const m1 = parseMetrics(await scrape(await metricsUrl(sat)));
  assert.equal(value(m1, 'harbor_satellite_sync_image_signatures{verdict="verified"}'), 2);
  assert.equal(value(m1, 'harbor_satellite_sync_image_signatures{verdict="unsigned"}'), 1);
  assert.equal(value(m1, 'harbor_satellite_sync_image_signatures{verdict="invalid"}'), 4);

  // warn: everything is committed; the ones without a valid signature are flagged.
  await writeDesired(desired, doc(2, 'warn', [keyA.publicKeyPem]));
  const s2 = await waitForStatus(sat, (s) => ran(2)(s) && s.sync.appliedGeneration === 2);
  for (const repo of REPOS) {
    assert.equal(img(s2, repo).status, 'ok', repo);
    assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/${repo}:v1`, { raw: true })), d(repo), repo);
  }
  assert.equal(img(s2, 'apps/unsigned').signature, 'unsigned');
  assert.equal(img(s2, 'apps/unsigned').code, 'SIGNATURE_REQUIRED');
  assert.equal(img(s2, 'apps/otherkey').signature, 'invalid');
  assert.equal(img(s2, 'apps/otherkey').code, 'SIGNATURE_INVALID');
  assert.equal(img(s2, 'apps/signed').signature, 'verified');
  assert.equal(img(s2, 'apps/signed').code, undefined);
  const text = await scrape(await metricsUrl(sat));
  await promtoolCheck(text);

  // Key rotation: B replaces A. The image A signed (already stored) is refused and untagged; B's verifies.
  await writeDesired(desired, doc(3, 'enforce', [keyB.publicKeyPem]));
  const s3 = await waitForStatus(sat, ran(3));
  assert.equal(img(s3, 'apps/signed').status, 'failed');
  assert.equal(img(s3, 'apps/signed').code, 'SIGNATURE_INVALID');
  assert.equal(await head('/v2/apps/signed/manifests/v1'), 404, 'a tag whose signature no trusted key verifies is withdrawn');
  assert.equal(await head(`/v2/apps/signed/manifests/${d('apps/signed')}`), 404, 'and its manifest: no pull by digest either');
  assert.equal(img(s3, 'apps/otherkey').status, 'ok');
  assert.equal(img(s3, 'apps/otherkey').signature, 'verified');
  assert.equal(img(s3, 'apps/otherkey').code, undefined);

  // No policy: nothing is checked, no signature verdict.
  await writeDesired(desired, { ...doc(4, 'warn', []), trust: undefined });
  const s4 = await waitForStatus(sat, (s) => ran(4)(s) && s.sync.appliedGeneration === 4);
  for (const repo of REPOS) assert.equal(img(s4, repo).signature, undefined, repo);
  assert.equal((await getStatus(sat)).sync.images.every((i) => i.status === 'ok'), true);
});

test('a desired state with a key that is not a PEM public key is refused whole', async (t) => {
  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, {
    generation: 1,
    upstream: { url: 'http://127.0.0.1:9' },
    images: [{ repository: 'a/b', tags: ['v1'] }],
    trust: [{ name: 'g', mode: 'enforce', keys: ['-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n'] }],
  });
  const sat = await startSatellite(t, { config: syncConfig(desired) });
  await sat.waitForLog(/trust\/0\/keys\/0: not a PEM public key/);
  assert.equal((await getStatus(sat)).sync.desiredGeneration, null);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startSatellite, type Satellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startRecordingRelay, type RecordingRelay } from '../helpers/recording-relay.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { makeCosignKey, pushBlob, pushCosignSignature } from '../helpers/cosign-sign.ts';
import { syncConfig, waitForStatus, writeDesired, type StatusDoc } from '../sync/helpers.ts';

const COSIGN_SIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

interface Index {
  mediaType: string;
  manifests: Array<{ digest: string; mediaType: string; size: number; artifactType?: string; annotations?: Record<string, string> }>;
}

/** Pushes `repos` (one small image each, tag v1) to `registry`; returns each one's manifest digest and size. */
async function pushImages(t: Parameters<typeof makeTempDir>[0], registry: { host: string }, repos: string[]) {
  const layout = await makeTempDir(t, 'hs-fixture-');
  const out = new Map<string, { digest: string; size: number }>();
  for (const repo of repos) {
    const tag = repo.replace(/\//g, '-');
    const img = await makeImage(layout, { tag, seed: `referrers-${repo}`, layerSizes: [20_000] });
    await skopeoCopy(`oci:${layout}:${tag}`, `docker://${registry.host}/${repo}:v1`);
    const size = (await skopeoInspect(`docker://${registry.host}/${repo}:v1`, { raw: true })).length;
    out.set(repo, { digest: img.manifestDigest, size });
  }
  return out;
}

/** An SBOM-like referrer (not a signature): must be neither verified nor replicated. `as`/`pad`: another artifact type, padding bytes. */
async function pushOtherReferrer(registry: { url: string }, repo: string, subject: { digest: string; size: number }, opts: { as?: string; pad?: number } = {}): Promise<string> {
  const empty = Buffer.from('{}');
  const sbom = Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', name: repo }));
  await pushBlob(registry, repo, empty);
  await pushBlob(registry, repo, sbom);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: opts.as ?? 'application/spdx+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: empty.length },
      layers: [{ mediaType: 'application/spdx+json', digest: sha256(sbom), size: sbom.length }],
      subject: { mediaType: OCI_MANIFEST, ...subject },
      annotations: { 'org.example.kind': 'sbom', ...(opts.pad ? { 'org.example.pad': 'x'.repeat(opts.pad) } : {}) },
    }),
  );
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${sha256(manifest)}`, { method: 'PUT', headers: { 'content-type': OCI_MANIFEST }, body: manifest });
  assert.equal(res.status, 201, await res.text());
  return sha256(manifest);
}

async function referrersOf(sat: Satellite, repo: string, digest: string, query = ''): Promise<{ res: Response; index: Index }> {
  const res = await fetch(`${sat.url}/v2/${repo}/referrers/${digest}${query}`);
  assert.equal(res.status, 200);
  return { res, index: (await res.json()) as Index };
}

const referrerCalls = (relay: RecordingRelay, repo: string) => relay.requests.filter((r) => r.url.startsWith(`/v2/${repo}/referrers/`));

test('referrers API: a satellite syncs cosign signatures from a referrers-capable upstream (another satellite), pages, filters, caps, and serves them again', async (t) => {
  const a = await startSatellite(t);
  const repos = ['apps/api-signed', 'apps/api-otherkey', 'apps/paged', 'apps/capped'];
  const images = await pushImages(t, a, repos);
  const img = (repo: string) => images.get(repo)!;
  const keyA = makeCosignKey();
  const keyB = makeCosignKey();
  const asReferrer = (repo: string) => ({ referrer: { subjectSize: img(repo).size, subjectMediaType: OCI_MANIFEST, fallbackTag: false } });

  const signed = await pushCosignSignature(a, 'apps/api-signed', img('apps/api-signed').digest, keyA.privateKey, asReferrer('apps/api-signed'));
  assert.equal(signed.subjectHeader, img('apps/api-signed').digest, 'the upstream satellite answers the push with OCI-Subject');
  await pushCosignSignature(a, 'apps/api-otherkey', img('apps/api-otherkey').digest, keyB.privateKey, asReferrer('apps/api-otherkey'));
  // A "signature" referrer of 300 KB: not held as a signature (over 256 KiB), and said so.
  const huge = await pushOtherReferrer(a, 'apps/api-otherkey', img('apps/api-otherkey'), { as: COSIGN_SIG, pad: 300_000 });
  const sbom = await pushOtherReferrer(a, 'apps/paged', img('apps/paged'));
  const pagedGood = await pushCosignSignature(a, 'apps/paged', img('apps/paged').digest, keyA.privateKey, asReferrer('apps/paged'));
  const pagedBad = await pushCosignSignature(a, 'apps/paged', img('apps/paged').digest, keyB.privateKey, asReferrer('apps/paged'));
  for (let i = 0; i < 4; i++) await pushCosignSignature(a, 'apps/capped', img('apps/capped').digest, keyB.privateKey, asReferrer('apps/capped'));

  // In front of A: records every request; for apps/paged it makes A page one referrer at a time and
  // drops the artifactType filter (as a registry that ignores it would), so B must page and filter.
  let breakApi = false;
  const relay = await startRecordingRelay(t, {
    target: a.url,
    rewrite: (url) => {
      // Later: the API of apps/api-signed answers an error that is not 404 (here A's 405 for a GET on uploads).
      if (breakApi && url.pathname.startsWith('/v2/apps/api-signed/referrers/')) url.pathname = '/v2/apps/api-signed/blobs/uploads/';
      if (!url.pathname.startsWith('/v2/apps/paged/referrers/')) return;
      url.searchParams.delete('artifactType');
      url.searchParams.set('n', '1');
    },
  });

  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, {
    generation: 1,
    upstream: { url: relay.url },
    images: repos.map((repository) => ({ repository, tags: ['v1'] })),
    trust: [{ name: 'edge', mode: 'enforce', keys: [keyA.publicKeyPem] }],
  });
  const b = await startSatellite(t, { config: syncConfig(desired, { maxReferrers: 3 }) });
  const s = await waitForStatus(b, (st: StatusDoc) => st.sync.lastRun?.generation === 1 && !st.sync.running && st.sync.images.length === repos.length);
  const status = (repo: string) => s.sync.images.find((i) => i.repository === repo)!;
  const head = (path: string) => fetch(`${b.url}${path}`, { method: 'HEAD', headers: { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` } }).then((r) => r.status);

  // Admitted through the API: B asked A's referrers API with the filter, never the fallback tag.
  assert.equal(status('apps/api-signed').status, 'ok');
  assert.equal(status('apps/api-signed').signature, 'verified');
  const asked = referrerCalls(relay, 'apps/api-signed');
  assert.deepEqual(asked.map((r) => [r.method, r.url, r.status]), [['GET', `/v2/apps/api-signed/referrers/${img('apps/api-signed').digest}?artifactType=${encodeURIComponent(COSIGN_SIG)}`, 200]]);
  const fallbackTag = img('apps/api-signed').digest.replace(':', '-');
  assert.equal(relay.requests.some((r) => r.url === `/v2/apps/api-signed/manifests/${fallbackTag}`), false, 'the referrers tag fallback was not read');
  assert.match(b.logs(), /"referrers":"api"[^\n]*"msg":"image signature verified"|"msg":"image signature verified"[^\n]*"referrers":"api"/);

  // B serves it again: its referrers API lists the signature, byte-identical to A's, payload included.
  const back = await referrersOf(b, 'apps/api-signed', img('apps/api-signed').digest);
  assert.equal(back.res.headers.get('content-type'), OCI_INDEX);
  assert.deepEqual(back.index.manifests.map((m) => [m.digest, m.artifactType]), [[signed.manifestDigest, COSIGN_SIG]]);
  const filtered = await referrersOf(b, 'apps/api-signed', img('apps/api-signed').digest, `?artifactType=${encodeURIComponent(COSIGN_SIG)}`);
  assert.equal(filtered.res.headers.get('oci-filters-applied'), 'artifactType');
  assert.equal(filtered.index.manifests.length, 1);
  const sigBytes = await fetch(`${b.url}/v2/apps/api-signed/manifests/${signed.manifestDigest}`, { headers: { accept: OCI_MANIFEST } });
  assert.equal(sha256(Buffer.from(await sigBytes.arrayBuffer())), signed.manifestDigest);
  assert.equal(await head(`/v2/apps/api-signed/blobs/${sha256(signed.payload)}`), 200);

  // A referrer signed by another key: refused.
  assert.equal(status('apps/api-otherkey').status, 'failed');
  assert.equal(status('apps/api-otherkey').code, 'SIGNATURE_INVALID');
  assert.match(status('apps/api-otherkey').reason ?? '', /does not verify with any trusted key/);
  assert.ok((status('apps/api-otherkey').reason ?? '').includes(`referrer ${huge} is 30`), status('apps/api-otherkey').reason);
  assert.equal(await head(`/v2/apps/api-otherkey/manifests/v1`), 404);

  // Paged (n=1) and unfiltered by the upstream: B followed every Link and filtered itself.
  assert.equal(status('apps/paged').signature, 'verified');
  const pages = referrerCalls(relay, 'apps/paged');
  assert.equal(pages.length, 3, JSON.stringify(pages));
  assert.ok(pages.slice(1).every((p) => /[?&]last=sha256%3A|[?&]last=sha256:/.test(p.forwarded)), 'later pages follow the Link');
  const pagedBack = await referrersOf(b, 'apps/paged', img('apps/paged').digest);
  assert.deepEqual(pagedBack.index.manifests.map((m) => m.digest).sort(), [pagedGood.manifestDigest, pagedBad.manifestDigest].sort(), 'only the signature referrers are replicated');
  assert.equal(await head(`/v2/apps/paged/manifests/${sbom}`), 404, 'the SBOM referrer is not replicated');

  // More referrers than sync.maxReferrers (3): the rest are not read, and the reason says so.
  assert.equal(status('apps/capped').status, 'failed');
  assert.equal(status('apps/capped').code, 'SIGNATURE_INVALID');
  assert.match(status('apps/capped').reason ?? '', /more than 3 referrers listed .*sync\.maxReferrers/);
  const cappedManifestGets = relay.requests.filter((r) => /^\/v2\/apps\/capped\/manifests\/sha256:/.test(r.url) && r.url !== `/v2/apps/capped/manifests/${img('apps/capped').digest}`);
  assert.equal(cappedManifestGets.length, 3, 'only the first 3 referrer manifests were fetched');
  assert.match(b.logs(), /"reason":"more than 3 referrers listed[^\n]*"msg":"referrers not all read"/);

  // The API fails otherwise than 404 on the next run: that image's check fails (it stays served as
  // stored, no fallback to the tag), the run goes on for the others.
  breakApi = true;
  const before = relay.requests.length;
  await writeDesired(desired, {
    generation: 2,
    upstream: { url: relay.url },
    images: repos.map((repository) => ({ repository, tags: ['v1'] })),
    trust: [{ name: 'edge', mode: 'enforce', keys: [keyA.publicKeyPem] }],
  });
  const s2 = await waitForStatus(b, (st: StatusDoc) => st.sync.lastRun?.generation === 2 && !st.sync.running);
  const broken = relay.requests.slice(before).filter((r) => r.url.startsWith('/v2/apps/api-signed/referrers/'));
  assert.ok(broken.length >= 1 && broken.every((r) => r.status === 405), JSON.stringify(broken));
  const i2 = s2.sync.images.find((i) => i.repository === 'apps/api-signed')!;
  assert.equal(i2.status, 'failed');
  assert.match(i2.reason ?? '', /^signature check: .*referrers of apps\/api-signed/);
  assert.equal(await head('/v2/apps/api-signed/manifests/v1'), 200, 'still served as stored');
  assert.equal(s2.sync.images.find((i) => i.repository === 'apps/paged')!.status, 'ok');
});

test('referrers API: on 404 (docker-registry 2.8) sync falls back to the referrers tag, and the satellite serves the API for what it got', async (t) => {
  const upstream = await startDockerRegistry(t);
  const images = await pushImages(t, upstream, ['apps/tagged']);
  const image = images.get('apps/tagged')!;
  const key = makeCosignKey();
  const sig = await pushCosignSignature(upstream, 'apps/tagged', image.digest, key.privateKey, { referrer: { subjectSize: image.size, subjectMediaType: OCI_MANIFEST } });
  const relay = await startRecordingRelay(t, { target: upstream.url });

  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  await writeDesired(desired, {
    generation: 1,
    upstream: { url: relay.url },
    images: [{ repository: 'apps/tagged', tags: ['v1'] }],
    trust: [{ name: 'edge', mode: 'enforce', keys: [key.publicKeyPem] }],
  });
  const sat = await startSatellite(t, { config: syncConfig(desired) });
  const s = await waitForStatus(sat, (st) => st.sync.lastRun?.generation === 1 && !st.sync.running && st.sync.images.length === 1);
  assert.equal(s.sync.images[0]!.status, 'ok');
  assert.equal(s.sync.images[0]!.signature, 'verified');
  // The API first (404 from distribution 2.8), then the tag schema.
  const api = referrerCalls(relay, 'apps/tagged');
  assert.equal(api.length, 1);
  assert.equal(api[0]!.status, 404);
  const tagGet = relay.requests.find((r) => r.url === `/v2/apps/tagged/manifests/${sig.tag}`);
  assert.equal(tagGet?.status, 200, 'the referrers tag was read');
  assert.ok(relay.requests.indexOf(api[0]!) < relay.requests.indexOf(tagGet!), 'after the API answered 404');
  assert.match(sat.logs(), /"referrers":"tag"/);

  const back = await referrersOf(sat, 'apps/tagged', image.digest);
  assert.deepEqual(back.index.manifests.map((m) => [m.digest, m.artifactType]), [[sig.manifestDigest, COSIGN_SIG]]);
});

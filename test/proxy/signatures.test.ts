import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSatellite, spawnSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry, type DockerRegistry } from '../helpers/docker-registry.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { hostPlatform, makeImage, sha256, writeIndex, type ImageFixture } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { makeCosignKey, pushCosignSignature } from '../helpers/cosign-sign.ts';
import { startContainerd, writeHostsToml } from '../helpers/containerd.ts';
import { freePort } from '../helpers/ports.ts';
import { writeDesired } from '../sync/helpers.ts';
import { metricsUrl, parseMetrics, promtoolCheck, scrape, value } from '../observability/helpers.ts';
import { blobFile, getStatus, layoutDigests, proxyConfig, waitFor } from './helpers.ts';
import type { SignatureGateStatus } from '../../src/proxy/index.ts';
import type { Satellite } from '../helpers/satellite.ts';

const MANIFEST_ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json';

/** One single-platform image per repository, pushed to the upstream by skopeo; their fixtures. */
async function pushImages(t: Parameters<typeof makeTempDir>[0], upstream: DockerRegistry, repos: string[]): Promise<Map<string, ImageFixture>> {
  const layout = await makeTempDir(t, 'hs-fixture-');
  const out = new Map<string, ImageFixture>();
  for (const repo of repos) {
    const tag = repo.replace('/', '-');
    const img = await makeImage(layout, { tag, seed: `proxy-trust-${repo}`, layerSizes: [200_000], platform: hostPlatform() });
    await skopeoCopy(`oci:${layout}:${tag}`, `docker://${upstream.host}/${repo}:v1`);
    out.set(repo, img);
  }
  return out;
}

/** GET a manifest from the satellite: status and the OCI error body, if any. */
async function getManifest(sat: Satellite, repo: string, ref: string): Promise<{ status: number; error?: { code: string; message: string; detail: { code?: string; reason?: string } | null }; digest?: string }> {
  const res = await fetch(`${sat.url}/v2/${repo}/manifests/${ref}`, { headers: { accept: MANIFEST_ACCEPT } });
  const body = Buffer.from(await res.arrayBuffer());
  if (res.status === 200) return { status: 200, digest: sha256(body) };
  return { status: res.status, error: (JSON.parse(body.toString()) as { errors: Array<{ code: string; message: string; detail: null }> }).errors[0]! };
}

const policyOf = async (sat: Satellite) => (await getStatus(sat)).proxy.signaturePolicy as SignatureGateStatus;
const present = (sat: Satellite, d: string) => stat(blobFile(sat.dataDir, d)).then(() => true, () => false);

test('proxy signature policy (enforce, key file): signed images pull, another key or no signature is refused 403 and not cached', async (t) => {
  const upstream = await startDockerRegistry(t);
  const keyA = makeCosignKey();
  const keyB = makeCosignKey();
  const images = await pushImages(t, upstream, ['apps/signed', 'apps/otherkey', 'apps/unsigned']);
  const d = (repo: string) => images.get(repo)!.manifestDigest;
  const sig = await pushCosignSignature(upstream, 'apps/signed', d('apps/signed'), keyA.privateKey);
  await pushCosignSignature(upstream, 'apps/otherkey', d('apps/otherkey'), keyB.privateKey);

  // A multi-platform image: cosign signs the index digest a tag names.
  const layout = await makeTempDir(t, 'hs-fixture-');
  const host = hostPlatform();
  const other = host.architecture === 'arm64' ? { os: 'linux', architecture: 'amd64' } : { os: 'linux', architecture: 'arm64' };
  const mine = await makeImage(layout, { seed: 'trust-multi-mine', layerSizes: [100_000], platform: host });
  const theirs = await makeImage(layout, { seed: 'trust-multi-theirs', layerSizes: [100_000], platform: other });
  const index = await writeIndex(layout, { tag: 'multi', images: [mine, theirs] });
  await skopeoCopy(`oci:${layout}:multi`, `docker://${upstream.host}/apps/multi:v1`, { all: true });
  await pushCosignSignature(upstream, 'apps/multi', index.indexDigest, keyA.privateKey);

  const keys = await makeTempDir(t, 'hs-keys-');
  await writeFile(join(keys, 'a.pub'), keyA.publicKeyPem);
  // tagTtlSeconds 0: every pull asks the upstream for the tag, so a re-check would show at once.
  const sat = await startSatellite(t, { config: proxyConfig(upstream.url, { tagTtlSeconds: 0, signaturePolicy: { mode: 'enforce', keyFiles: [join(keys, 'a.pub')] } }) });

  // A valid signature by the key in the key file: the pull works, byte for byte.
  const pulled = await makeTempDir(t, 'hs-pull-');
  await skopeoCopy(`docker://${sat.host}/apps/signed:v1`, `oci:${pulled}:v1`);
  assert.equal((await layoutDigests(pulled)).manifest, d('apps/signed'));
  // Its signature is kept with it: devices can check again from the satellite.
  const kept = await getManifest(sat, 'apps/signed', sig.tag);
  assert.equal(kept.status, 200);
  assert.equal(kept.digest, sig.manifestDigest, 'the satellite serves the upstream signature manifest byte for byte');
  assert.equal((await fetch(`${sat.url}/v2/apps/signed/blobs/${sha256(sig.payload)}`)).status, 200, 'and its payload');
  let p = await policyOf(sat);
  assert.equal(p.mode, 'enforce');
  assert.equal(p.keys.length, 1);
  assert.equal(p.verdicts.verified, 1);

  // A hot tag: pulled again, the tag re-resolved upstream each time, the verdict is not reached again.
  for (let i = 0; i < 2; i++) await skopeoCopy(`docker://${sat.host}/apps/signed:v1`, `oci:${await makeTempDir(t, 'hs-pull-')}:v1`);
  p = await policyOf(sat);
  assert.equal(p.verdicts.verified, 1, 'verified once');
  assert.ok(p.verdictCacheHits >= 2, `verdict cache hits ${p.verdictCacheHits}`);

  // Another key, and no signature at all: refused with the code and the reason, nothing cached.
  const cases: Array<[string, string, RegExp]> = [
    ['apps/otherkey', 'SIGNATURE_INVALID', /does not verify with any trusted key/],
    ['apps/unsigned', 'SIGNATURE_REQUIRED', /no signature at apps\/unsigned:sha256-/],
  ];
  for (const [repo, code, reason] of cases) {
    await assert.rejects(skopeoCopy(`docker://${sat.host}/${repo}:v1`, `oci:${await makeTempDir(t, 'hs-pull-')}:v1`), new RegExp(`denied: ${code}`), repo);
    for (const ref of ['v1', d(repo)]) {
      const r = await getManifest(sat, repo, ref);
      assert.equal(r.status, 403, `${repo}:${ref}`);
      assert.equal(r.error?.code, 'DENIED');
      assert.match(r.error?.message ?? '', new RegExp(`^${code}: ${repo}@${d(repo)}: `));
      assert.match(r.error?.message ?? '', reason);
      assert.equal(r.error?.detail?.code, code);
    }
    // A blob GET by digest names no image: under enforce only blobs of admitted manifests are fetched.
    const layer = images.get(repo)!.layerDigests[0]!;
    const blob = await fetch(`${sat.url}/v2/${repo}/blobs/${layer}`);
    assert.equal(blob.status, 403, `${repo} layer`);
    assert.match(((await blob.json()) as { errors: Array<{ message: string }> }).errors[0]!.message, /^SIGNATURE_REQUIRED: blob .* not referenced by any admitted manifest/);
    for (const b of [images.get(repo)!.configDigest, layer]) assert.equal(await present(sat, b), false, `${repo}: nothing of it stored`);
  }
  p = await policyOf(sat);
  assert.equal(p.verdicts.invalid, 1);
  assert.equal(p.verdicts.unsigned, 1);
  assert.deepEqual(p.flagged.map((f) => [f.repository, f.code, f.refused]).sort(), [['apps/otherkey', 'SIGNATURE_INVALID', true], ['apps/unsigned', 'SIGNATURE_REQUIRED', true]]);
  assert.ok(p.refusals >= 8, `refusals ${p.refusals}`); // per image: skopeo, a GET by tag and by digest, a blob

  // The signed index through containerd (?ns=): the platform manifest, fetched by digest, is admitted through it.
  const hostsDir = await makeTempDir(t, 'hs-hosts-');
  await writeHostsToml(hostsDir, 'upstream.test:5000', { server: `http://127.0.0.1:${await freePort()}`, mirrors: [{ url: `http://${sat.host}`, capabilities: ['pull', 'resolve'] }] });
  const ctr = await startContainerd(t);
  assert.equal(await ctr.pull('upstream.test:5000/apps/multi:v1', { hostsDir }), index.indexDigest);
  for (const b of [mine.configDigest, ...mine.layerDigests]) assert.equal(await present(sat, b), true);
  // containerd is refused too: an unsigned image does not pull.
  await assert.rejects(ctr.pull('upstream.test:5000/apps/unsigned:v1', { hostsDir }), /403|denied|SIGNATURE_REQUIRED/i);
  p = await policyOf(sat);
  assert.equal(p.verdicts.verified, 3, 'apps/signed, the index, and its platform manifest (through the index)');
  assert.match(sat.logs(), /"via":"sha256:[0-9a-f]{64}","msg":"manifest signature verified"/);

  const text = await scrape(await metricsUrl(sat));
  await promtoolCheck(text);
  const m = parseMetrics(text);
  assert.equal(value(m, 'harbor_satellite_proxy_signature_verdicts_total{verdict="verified"}'), 3);
  assert.equal(value(m, 'harbor_satellite_proxy_signature_verdicts_total{verdict="unsigned"}'), 1);
  assert.equal(value(m, 'harbor_satellite_proxy_signature_verdicts_total{verdict="invalid"}'), 1);
  assert.equal(value(m, 'harbor_satellite_proxy_signature_refusals_total'), (await policyOf(sat)).refusals);
  assert.equal(value(m, 'harbor_satellite_proxy_signature_flagged_images'), 2);
});

test('proxy signature policy from the desired state: warn serves and flags, an enforce rotation to another key refuses until re-signed', async (t) => {
  const upstream = await startDockerRegistry(t);
  const keyA = makeCosignKey();
  const keyB = makeCosignKey();
  const images = await pushImages(t, upstream, ['apps/signed', 'apps/unsigned']);
  const d = (repo: string) => images.get(repo)!.manifestDigest;
  await pushCosignSignature(upstream, 'apps/signed', d('apps/signed'), keyA.privateKey);

  const dir = await makeTempDir(t, 'hs-desired-');
  const desired = join(dir, 'desired.json');
  const doc = (generation: number, mode: 'warn' | 'enforce', keys: string[]) => ({ generation, upstream: { url: upstream.url }, images: [], trust: [{ name: 'edge', mode, keys }] });
  await writeDesired(desired, doc(1, 'warn', [keyA.publicKeyPem]));
  // No key files: the keys come from the desired state (what Ground Control sends per group).
  const config = proxyConfig(upstream.url, { tagTtlSeconds: 0, signaturePolicy: { mode: 'warn', recheckSeconds: 1 } });
  const sat = await startSatellite(t, { config: { ...config, sync: { desiredStateFile: desired, intervalSeconds: 3600 } } });
  const generation = (g: number) => waitFor(`generation ${g}`, async () => ((await getStatus(sat)) as unknown as { sync: { desiredGeneration: number | null } }).sync.desiredGeneration === g || undefined);
  await generation(1);

  // warn: the unsigned image is served, logged, counted and flagged.
  const pull = async (repo: string) => {
    const to = await makeTempDir(t, 'hs-pull-');
    await skopeoCopy(`docker://${sat.host}/${repo}:v1`, `oci:${to}:v1`);
    return (await layoutDigests(to)).manifest;
  };
  assert.equal(await pull('apps/unsigned'), d('apps/unsigned'));
  assert.equal(await pull('apps/signed'), d('apps/signed'));
  let p = await policyOf(sat);
  assert.equal(p.verdicts.unsigned, 1);
  assert.equal(p.verdicts.verified, 1);
  assert.deepEqual(p.flagged.map((f) => [f.repository, f.verdict, f.code, f.mode, f.refused]), [['apps/unsigned', 'unsigned', 'SIGNATURE_REQUIRED', 'warn', false]]);
  assert.match(sat.logs(), /"msg":"manifest served without a valid signature \(policy mode warn\)"/);
  const m1 = parseMetrics(await scrape(await metricsUrl(sat)));
  assert.equal(value(m1, 'harbor_satellite_proxy_signature_verdicts_total{verdict="unsigned"}'), 1);
  assert.equal(value(m1, 'harbor_satellite_proxy_signature_refusals_total'), 0);

  // Key rotation in the desired state: B replaces A, and the group enforces (stricter than the config's warn).
  await writeDesired(desired, doc(2, 'enforce', [keyB.publicKeyPem]));
  await generation(2);
  // Both images are cached; the verdicts were reached under A and are checked again.
  const signed = await getManifest(sat, 'apps/signed', 'v1');
  assert.equal(signed.status, 403);
  assert.match(signed.error?.message ?? '', /^SIGNATURE_INVALID: apps\/signed@sha256:.*does not verify with any trusted key/);
  const unsigned = await getManifest(sat, 'apps/unsigned', 'v1');
  assert.equal(unsigned.status, 403);
  assert.match(unsigned.error?.message ?? '', /^SIGNATURE_REQUIRED: /);
  await assert.rejects(skopeoCopy(`docker://${sat.host}/apps/signed:v1`, `oci:${await makeTempDir(t, 'hs-pull-')}:v1`), /denied: SIGNATURE_INVALID/);

  // Re-signed with B upstream: after recheckSeconds the refusal is checked again and the pull works;
  // the satellite now keeps B's signature.
  const sigB = await pushCosignSignature(upstream, 'apps/signed', d('apps/signed'), keyB.privateKey);
  await sleep(1100);
  assert.equal(await pull('apps/signed'), d('apps/signed'));
  const kept = await getManifest(sat, 'apps/signed', sigB.tag);
  assert.equal(kept.digest, sigB.manifestDigest, "B's signature is kept in place of A's");
  p = await policyOf(sat);
  assert.equal(p.verdicts.verified, 2);
  assert.ok(p.refusals >= 3);
  const m2 = parseMetrics(await scrape(await metricsUrl(sat)));
  assert.equal(value(m2, 'harbor_satellite_proxy_signature_verdicts_total{verdict="verified"}'), 2);
});

test('repositories patterns and mirrors: the policy covers only matching store names; a mirror image is checked under its upstream name', async (t) => {
  const a = await startDockerRegistry(t);
  const b = await startDockerRegistry(t);
  const key = makeCosignKey();
  const onA = await pushImages(t, a, ['library/app']);
  const onB = await pushImages(t, b, ['library/app', 'library/tool']);
  // Signed on b as b names it (docker-reference 127.0.0.1:PORT/library/app), not as the satellite stores it.
  await pushCosignSignature(b, 'library/app', onB.get('library/app')!.manifestDigest, key.privateKey);
  const keys = await makeTempDir(t, 'hs-keys-');
  await writeFile(join(keys, 'k.pub'), key.publicKeyPem);
  const sat = await startSatellite(t, {
    config: proxyConfig(a.url, {
      mirrors: [{ namespace: 'b.test:5000', upstream: { url: b.url } }],
      signaturePolicy: { mode: 'enforce', keyFiles: [join(keys, 'k.pub')], repositories: ['b.test-5000/*'] },
    }),
  });
  const pull = async (ref: string) => {
    const to = await makeTempDir(t, 'hs-pull-');
    await skopeoCopy(`docker://${sat.host}/${ref}`, `oci:${to}:v1`);
    return (await layoutDigests(to)).manifest;
  };
  // Not covered by the pattern: the default upstream's unsigned image is served as before.
  assert.equal(await pull('library/app:v1'), onA.get('library/app')!.manifestDigest);
  // Covered: the mirror's signed image verifies under its upstream name; its unsigned one is refused.
  assert.equal(await pull('b.test-5000/library/app:v1'), onB.get('library/app')!.manifestDigest);
  const r = await getManifest(sat, 'b.test-5000/library/tool', 'v1');
  assert.equal(r.status, 403);
  assert.match(r.error?.message ?? '', /^SIGNATURE_REQUIRED: b\.test-5000\/library\/tool@sha256:/);
  const p = await policyOf(sat);
  assert.deepEqual(p.repositories, ['b.test-5000/*']);
  assert.deepEqual([p.verdicts.verified, p.verdicts.unsigned], [1, 1]);
});

test('a limit, measured: containerd takes a 403 from the mirror as a failure and falls back to a reachable server', async (t) => {
  const upstream = await startDockerRegistry(t);
  const images = await pushImages(t, upstream, ['apps/unsigned']);
  const keys = await makeTempDir(t, 'hs-keys-');
  await writeFile(join(keys, 'k.pub'), makeCosignKey().publicKeyPem);
  const sat = await startSatellite(t, { config: proxyConfig(upstream.url, { signaturePolicy: { mode: 'enforce', keyFiles: [join(keys, 'k.pub')] } }) });
  const hostsDir = await makeTempDir(t, 'hs-hosts-');
  // server: the real upstream (loopback), as a hosts.toml written for a reachable registry has it.
  await writeHostsToml(hostsDir, 'upstream.test:5000', { server: upstream.url, mirrors: [{ url: `http://${sat.host}`, capabilities: ['pull', 'resolve'] }] });
  const ctr = await startContainerd(t);
  assert.equal(await ctr.pull('upstream.test:5000/apps/unsigned:v1', { hostsDir }), images.get('apps/unsigned')!.manifestDigest, 'pulled from the server, around the refusal');
  assert.ok((await policyOf(sat)).refusals >= 1, 'the satellite did refuse it');
  assert.equal(await present(sat, images.get('apps/unsigned')!.layerDigests[0]!), false, 'and stored nothing of it');
});

test('after a restart with the upstream down, cached images are checked again from the signatures kept beside them', async (t) => {
  const upstream = await startDockerRegistry(t);
  const keyA = makeCosignKey();
  const keyB = makeCosignKey();
  const images = await pushImages(t, upstream, ['apps/signed']);
  const digest = images.get('apps/signed')!.manifestDigest;
  await pushCosignSignature(upstream, 'apps/signed', digest, keyA.privateKey);
  const keys = await makeTempDir(t, 'hs-keys-');
  await writeFile(join(keys, 'a.pub'), keyA.publicKeyPem);
  await writeFile(join(keys, 'b.pub'), keyB.publicKeyPem);
  const dataDir = await makeTempDir(t, 'hs-satellite-data-');
  const withKey = (file: string) => ({ dataDir, config: proxyConfig(upstream.url, { tagTtlSeconds: 0, signaturePolicy: { mode: 'enforce', keyFiles: [join(keys, file)] } }) });

  const first = await startSatellite(t, withKey('a.pub'));
  await skopeoCopy(`docker://${first.host}/apps/signed:v1`, `oci:${await makeTempDir(t, 'hs-pull-')}:v1`);
  await first.stop();
  await upstream.stop();

  // Same key, WAN down, verdicts gone with the process: the kept signature verifies it again.
  const second = await startSatellite(t, withKey('a.pub'));
  const pulled = await makeTempDir(t, 'hs-pull-');
  await skopeoCopy(`docker://${second.host}/apps/signed:v1`, `oci:${pulled}:v1`);
  assert.equal((await layoutDigests(pulled)).manifest, digest);
  assert.equal((await policyOf(second)).verdicts.verified, 1);
  await second.stop();

  // Key file rotated to B, WAN down: the kept signature (A's) no longer verifies; refused.
  const third = await startSatellite(t, withKey('b.pub'));
  const r = await getManifest(third, 'apps/signed', 'v1');
  assert.equal(r.status, 403);
  assert.match(r.error?.message ?? '', /^SIGNATURE_INVALID: apps\/signed@sha256:.*does not verify with any trusted key/);
  await third.waitForLog(/"msg":"upstream unavailable for a signature check; the kept signatures decide"/);
});

test('proxy.signaturePolicy.keyFiles: a file without a public key is a configuration error naming it (exit 78)', async (t) => {
  const dir = await makeTempDir(t, 'hs-keys-');
  await writeFile(join(dir, 'bad.pub'), 'not a key\n');
  const sat = await spawnSatellite(t, {
    config: { proxy: { enabled: true, upstream: { url: 'http://127.0.0.1:9' }, signaturePolicy: { mode: 'enforce', keyFiles: [join(dir, 'bad.pub')] } } },
  });
  const exit = await sat.proc.exited;
  assert.equal(exit.code, 78);
  assert.match(sat.logs(), /proxy\.signaturePolicy\.keyFiles\[0\]: .*bad\.pub holds no PEM public key/);
});

// What the proxy's signature policy costs: manifest misses and hits through a satellite with
// proxy.signaturePolicy off and one with enforce (key file), side by side on one upstream, each
// behind its own counting relay (bytes read from the upstream).
//   node --test --test-concurrency=1 bench/proxy/signatures.test.ts
// Figures in docs/trust.md. Needs the Debian peers (docker-registry, skopeo).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite, type Satellite } from '../../test/helpers/satellite.ts';
import { startDockerRegistry } from '../../test/helpers/docker-registry.ts';
import { startFaultProxy } from '../../test/helpers/fault-proxy.ts';
import { makeTempDir } from '../../test/helpers/tmp.ts';
import { hostPlatform, makeImage } from '../../test/helpers/fixtures.ts';
import { skopeoCopy } from '../../test/helpers/skopeo.ts';
import { makeCosignKey, pushCosignSignature } from '../../test/helpers/cosign-sign.ts';

const REPOS = 20;
const HITS = 200;
const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json';

async function timed(sat: Satellite, repo: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${sat.url}/v2/${repo}/manifests/v1`, { headers: { accept: ACCEPT } });
  await res.arrayBuffer();
  assert.equal(res.status, 200, repo);
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)]!;

test('signature policy cost: manifest misses and hits, off vs enforce', { timeout: 600_000 }, async (t) => {
  const upstream = await startDockerRegistry(t);
  const key = makeCosignKey();
  const layout = await makeTempDir(t, 'hs-bench-');
  for (let i = 0; i < REPOS; i++) {
    const img = await makeImage(layout, { tag: `i${i}`, seed: `bench-trust-${i}`, layerSizes: [10_000], platform: hostPlatform() });
    await skopeoCopy(`oci:${layout}:i${i}`, `docker://${upstream.host}/bench/i${i}:v1`);
    await pushCosignSignature(upstream, `bench/i${i}`, img.manifestDigest, key.privateKey);
  }
  const keys = await makeTempDir(t, 'hs-keys-');
  await writeFile(join(keys, 'a.pub'), key.publicKeyPem);
  const linkOff = await startFaultProxy(t, { target: upstream.host });
  const linkOn = await startFaultProxy(t, { target: upstream.host });
  const off = await startSatellite(t, { config: { proxy: { enabled: true, upstream: { url: linkOff.url } } } });
  const on = await startSatellite(t, { config: { proxy: { enabled: true, upstream: { url: linkOn.url }, signaturePolicy: { mode: 'enforce', keyFiles: [join(keys, 'a.pub')] } } } });

  const miss = { off: [] as number[], on: [] as number[] };
  for (let i = 0; i < REPOS; i++) {
    // Interleaved, so both see the same machine load.
    miss.off.push(await timed(off, `bench/i${i}`));
    miss.on.push(await timed(on, `bench/i${i}`));
  }
  const hit = { off: [] as number[], on: [] as number[] };
  for (let i = 0; i < HITS; i++) {
    hit.off.push(await timed(off, `bench/i${i % REPOS}`));
    hit.on.push(await timed(on, `bench/i${i % REPOS}`));
  }
  const lines = [
    `manifest miss (${REPOS} repos): off median ${median(miss.off).toFixed(1)} ms p95 ${p95(miss.off).toFixed(1)}; enforce median ${median(miss.on).toFixed(1)} ms p95 ${p95(miss.on).toFixed(1)}`,
    `upstream bytes for the misses: off ${linkOff.bytesFromTarget()}, enforce ${linkOn.bytesFromTarget()} (${(linkOn.bytesFromTarget() / REPOS).toFixed(0)} per image)`,
    `manifest hit (${HITS}): off median ${median(hit.off).toFixed(2)} ms p95 ${p95(hit.off).toFixed(2)}; enforce median ${median(hit.on).toFixed(2)} ms p95 ${p95(hit.on).toFixed(2)}`,
  ];
  for (const l of lines) t.diagnostic(l);
});

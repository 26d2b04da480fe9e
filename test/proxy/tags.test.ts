import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSatellite, spawnSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { startFaultProxy } from '../helpers/fault-proxy.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { getStatus, MiB, proxyConfig } from './helpers.ts';

const ACCEPT = 'application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json';

async function manifestDigest(url: string): Promise<string | undefined> {
  const res = await fetch(url, { headers: { accept: ACCEPT } });
  await res.arrayBuffer();
  return res.status === 200 ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await fn();
  return { value, ms: Date.now() - started };
}

async function errorOf(res: Response): Promise<string | undefined> {
  const body = (await res.json()) as { errors?: Array<{ code: string }> };
  return body.errors?.[0]?.code;
}

test('tag TTL: a moved tag is served at its old digest within the TTL and at the new one after', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const one = await makeImage(layout, { tag: 'one', seed: 'ttl-one', layerSizes: [64 * 1024] });
  const two = await makeImage(layout, { tag: 'two', seed: 'ttl-two', layerSizes: [64 * 1024] });
  await skopeoCopy(`oci:${layout}:one`, `docker://${upstream.host}/ttl/app:latest`);
  const sat = await startSatellite(t, { config: proxyConfig(upstream.url, { tagTtlSeconds: 3 }) });
  const url = `${sat.url}/v2/ttl/app/manifests/latest`;
  assert.equal(await manifestDigest(url), one.manifestDigest);
  const cachedAt = Date.now();

  await skopeoCopy(`oci:${layout}:two`, `docker://${upstream.host}/ttl/app:latest`);
  assert.equal(await manifestDigest(url), one.manifestDigest, 'within the TTL: the cached digest, upstream not asked');
  assert.equal((await getStatus(sat)).proxy.manifestHits, 1);
  await sleep(Math.max(0, cachedAt + 3200 - Date.now()));
  assert.equal(await manifestDigest(url), two.manifestDigest, 'after the TTL: revalidated, moved');
  // The old image is still there by digest (cached, evicted only by LRU).
  assert.equal(await manifestDigest(`${sat.url}/v2/ttl/app/manifests/${one.manifestDigest}`), one.manifestDigest);
  // Unchanged upstream after the next TTL: a HEAD confirms it.
  await sleep(3200);
  assert.equal(await manifestDigest(url), two.manifestDigest);
  assert.equal((await getStatus(sat)).proxy.revalidations, 1);
});

test('fast 404s: proxy off, upstream 404, ns for another registry, hanging upstream', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'fast-404', layerSizes: [MiB] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/here/app:v1`);
  const blob = img.layerDigests[0]!;

  const off = await startSatellite(t);
  for (const [path, code] of [
    ['/v2/here/app/manifests/v1', 'NAME_UNKNOWN'],
    [`/v2/here/app/blobs/${blob}`, 'BLOB_UNKNOWN'],
  ] as const) {
    const { value: res, ms } = await timed(() => fetch(`${off.url}${path}`));
    assert.equal(res.status, 404);
    assert.equal(await errorOf(res), code);
    assert.ok(ms < 500, `${ms} ms`);
  }
  assert.deepEqual((await getStatus(off)).proxy, { enabled: false });

  const hang = await startFaultProxy(t, { target: upstream.host });
  const on = await startSatellite(t, { config: proxyConfig(upstream.url, { namespace: 'registry.example.com' }) });
  for (const [path, code] of [
    ['/v2/here/app/manifests/nope', 'MANIFEST_UNKNOWN'],
    ['/v2/not/there/manifests/v1', 'MANIFEST_UNKNOWN'],
    [`/v2/here/app/blobs/sha256:${'0'.repeat(64)}`, 'BLOB_UNKNOWN'],
    // containerd says which registry it meant: another one is not proxied.
    ['/v2/here/app/manifests/v1?ns=docker.io', 'NAME_UNKNOWN'],
    [`/v2/here/app/blobs/${blob}?ns=docker.io`, 'BLOB_UNKNOWN'],
  ] as const) {
    const { value: res, ms } = await timed(() => fetch(`${on.url}${path}`));
    assert.equal(res.status, 404, path);
    assert.equal(await errorOf(res), code, path);
    assert.ok(ms < 1000, `${path}: ${ms} ms`);
  }
  assert.equal(await manifestDigest(`${on.url}/v2/here/app/manifests/v1?ns=registry.example.com`), img.manifestDigest);

  hang.pause('blackhole');
  const slow = await startSatellite(t, { config: proxyConfig(hang.url, { firstByteTimeoutMs: 1000 }) });
  for (const [path, code] of [
    ['/v2/here/app/manifests/v1', 'MANIFEST_UNKNOWN'],
    [`/v2/here/app/blobs/${blob}`, 'BLOB_UNKNOWN'],
  ] as const) {
    const { value: res, ms } = await timed(() => fetch(`${slow.url}${path}`));
    assert.equal(res.status, 404, path);
    assert.equal(await errorOf(res), code);
    assert.ok(ms < 4000, `a hanging upstream held ${path} for ${ms} ms`);
    t.diagnostic(`hanging upstream: ${path} answered 404 in ${ms} ms`);
  }
});

test('proxy.enabled without proxy.upstream is a configuration error (exit 78)', async (t) => {
  const sat = await spawnSatellite(t, { config: { proxy: { enabled: true } } });
  const exit = await sat.proc.exited;
  assert.equal(exit.code, 78);
  assert.match(sat.logs(), /\/proxy: must have required property 'upstream'/);
});

test('a bad proxy.resumeAttempts is a configuration error naming the key (exit 78)', async (t) => {
  const sat = await spawnSatellite(t, { config: { proxy: { enabled: true, upstream: { url: 'http://127.0.0.1:9' }, resumeAttempts: -1 } } });
  const exit = await sat.proc.exited;
  assert.equal(exit.code, 78);
  assert.match(sat.logs(), /\/proxy\/resumeAttempts: must be >= 0/);
});

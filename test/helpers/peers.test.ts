import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import test from 'node:test';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { requireBinary } from './bin.ts';
import { startContainerd, writeHostsToml } from './containerd.ts';
import { startDockerRegistry } from './docker-registry.ts';
import { hostPlatform, makeImage, makeLayer, sha256, writeIndex, type Platform } from './fixtures.ts';
import { httpStatus } from './process.ts';
import { skopeoCopy, skopeoInspect } from './skopeo.ts';
import { makeTempDir } from './tmp.ts';

const run = promisify(execFile);

const other = (p: Platform): Platform =>
  p.architecture === 'amd64' ? { os: 'linux', architecture: 'arm64' } : { os: 'linux', architecture: 'amd64' };

async function hashFile(path: string, gunzip = false): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  const sink = async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      hash.update(chunk);
      size += chunk.length;
    }
  };
  if (gunzip) await pipeline(createReadStream(path), createGunzip(), sink);
  else await pipeline(createReadStream(path), sink);
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

test('fixture images go through docker-registry, skopeo and containerd with their digests intact', async (t) => {
  const layout = await makeTempDir(t, 'hs-layout-');
  const host = hostPlatform();
  const image = await makeImage(layout, { tag: 'v1', seed: 'app', layerSizes: [200_000, 300_000], platform: host });
  const index = await writeIndex(layout, {
    tag: 'multi',
    images: [
      await makeImage(layout, { seed: 'multi-a', layerSizes: [100_000, 150_000], platform: host, gzipLevel: 6 }),
      await makeImage(layout, { seed: 'multi-b', layerSizes: [120_000], platform: other(host) }),
    ],
  });

  // The layers are real tar+gzip archives.
  const firstLayer = image.layers[0];
  assert.ok(firstLayer);
  const { stdout: listing } = await run(requireBinary('tar'), ['-tzvf', firstLayer.path]);
  assert.match(listing, /layer-[0-9a-f]{16}\/file-000000\.bin/);
  assert.equal(sha256(image.manifest), image.manifestDigest);

  const registry = await startDockerRegistry(t);
  await skopeoCopy(`oci:${layout}:v1`, `docker://${registry.host}/fixtures/app:v1`);
  await skopeoCopy(`oci:${layout}:multi`, `docker://${registry.host}/fixtures/app:multi`, { all: true });

  const raw = await skopeoInspect(`docker://${registry.host}/fixtures/app:v1`, { raw: true });
  assert.deepEqual(raw, image.manifest, 'the registry serves the manifest bytes unchanged');
  const info = await skopeoInspect(`docker://${registry.host}/fixtures/app:v1`);
  assert.equal(info.Digest, image.manifestDigest);
  assert.deepEqual(info.Layers, image.layerDigests);
  const rawIndex = await skopeoInspect(`docker://${registry.host}/fixtures/app:multi`, { raw: true });
  assert.equal(sha256(rawIndex), index.indexDigest);

  // containerd pulls a name that does not resolve, through hosts.toml, from the registry.
  const containerd = await startContainerd(t);
  const hostsDir = await makeTempDir(t, 'hs-hosts-');
  await writeHostsToml(hostsDir, 'upstream.test:5000', {
    server: registry.url,
    mirrors: [{ url: registry.url, capabilities: ['pull', 'resolve'] }],
  });
  assert.equal(await containerd.pull('upstream.test:5000/fixtures/app:v1', { hostsDir }), image.manifestDigest);
  assert.equal(await containerd.pull('upstream.test:5000/fixtures/app:multi', { hostsDir }), index.indexDigest);
  for (const layer of image.layers) {
    const stored = join(containerd.root, 'io.containerd.content.v1.content', 'blobs', 'sha256', layer.digest.slice(7));
    assert.equal((await stat(stored)).size, layer.size);
  }
});

test('a 50 MB layer streams to disk with bounded memory and the digests it reports', async (t) => {
  const dir = await makeTempDir(t, 'hs-big-layer-');
  const bytes = 50 * 1024 * 1024;
  globalThis.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const layer = await makeLayer('big', bytes, { dir });
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);

  const onDisk = await hashFile(layer.path);
  assert.equal(onDisk.digest, layer.digest);
  assert.equal(onDisk.size, layer.size);
  assert.ok(layer.size > bytes, 'random content does not compress');
  const tar = await hashFile(layer.path, true);
  assert.equal(tar.digest, layer.diffId);
  assert.equal(tar.size, layer.uncompressedSize);
  t.diagnostic(`RSS grew by ${((peak - baseline) / 2 ** 20).toFixed(1)} MiB`);
  assert.ok(peak - baseline < 48 * 1024 * 1024, `RSS grew by ${((peak - baseline) / 2 ** 20).toFixed(1)} MiB`);

  // Same seed, same tar bytes.
  const again = await makeLayer('big', bytes, { dir: await makeTempDir(t, 'hs-big-layer-') });
  assert.equal(again.diffId, layer.diffId);
  assert.equal(again.digest, layer.digest);
});

test('docker-registry auth and proxy options produce a working config', async (t) => {
  const dir = await makeTempDir(t, 'hs-auth-');
  const layout = join(dir, 'layout');
  const image = await makeImage(layout, { tag: 'v1', seed: 'auth', layerSizes: [50_000] });

  // htpasswd (bcrypt) basic auth
  const htpasswdFile = join(dir, 'htpasswd');
  const { stdout: entry } = await run(requireBinary('htpasswd'), ['-Bbn', 'alice', 's3cret']);
  await writeFile(htpasswdFile, entry);
  const locked = await startDockerRegistry(t, { htpasswdFile });
  assert.equal(await httpStatus(`${locked.url}/v2/`), 401);
  await skopeoCopy(`oci:${layout}:v1`, `docker://${locked.host}/auth/app:v1`, { destCreds: 'alice:s3cret' });
  await assert.rejects(skopeoInspect(`docker://${locked.host}/auth/app:v1`, { raw: true }), /unauthorized|authentication required/i);
  const raw = await skopeoInspect(`docker://${locked.host}/auth/app:v1`, { raw: true, creds: 'alice:s3cret' });
  assert.deepEqual(raw, image.manifest);

  // Pull-through cache. distribution 2.8's proxy only authenticates to Bearer-token upstreams: in
  // front of the Basic-auth registry above it answers 404 MANIFEST_UNKNOWN. So: an open upstream.
  const open = await startDockerRegistry(t);
  await skopeoCopy(`oci:${layout}:v1`, `docker://${open.host}/auth/app:v1`);
  const proxy = await startDockerRegistry(t, { proxyRemoteUrl: open.url });
  const viaProxy = await skopeoInspect(`docker://${proxy.host}/auth/app:v1`, { raw: true });
  assert.deepEqual(viaProxy, image.manifest);

  // token auth: starts, and challenges with the configured realm
  const key = join(dir, 'token.key');
  const cert = join(dir, 'token.crt');
  await run(requireBinary('openssl'), [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=test-token-issuer', '-keyout', key, '-out', cert,
  ]);
  const tokenRegistry = await startDockerRegistry(t, {
    token: { realm: 'http://127.0.0.1:1/token', service: 'test-registry', issuer: 'test-issuer', rootCertBundle: cert },
  });
  const challenge = await fetch(`${tokenRegistry.url}/v2/`);
  await challenge.body?.cancel();
  assert.equal(challenge.status, 401);
  assert.match(challenge.headers.get('www-authenticate') ?? '', /^Bearer realm="http:\/\/127\.0\.0\.1:1\/token",service="test-registry"/);
});

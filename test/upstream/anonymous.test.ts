import assert from 'node:assert/strict';
import test from 'node:test';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { MediaType } from '../../src/oci/media-types.ts';
import { UpstreamErrorCode } from '../../src/upstream/index.ts';
import { bigLayer, pushFixtures, readAll, rejectsWithCode, sha256, upstreamClient } from './setup.ts';

test('anonymous docker-registry 2.8 upstream', async (t) => {
  const registry = await startDockerRegistry(t);
  const fx = await pushFixtures(t, registry);
  const { client, metered } = upstreamClient(t, { url: registry.url });
  const { repo, image, index } = fx;

  await t.test('ping', async () => {
    await client.ping();
  });

  await t.test('getManifest by tag and by digest returns the exact bytes', async () => {
    const byTag = await client.getManifest(repo, 'v1');
    assert.deepEqual(byTag.body, image.manifest);
    assert.equal(byTag.digest, image.manifestDigest);
    assert.equal(byTag.mediaType, MediaType.ociManifest);
    const byDigest = await client.getManifest(repo, image.manifestDigest);
    assert.deepEqual(byDigest.body, image.manifest);
    assert.equal(byDigest.digest, image.manifestDigest);
  });

  await t.test('an OCI index pushed with skopeo --all comes back as the index', async () => {
    const byTag = await client.getManifest(repo, 'multi');
    assert.equal(byTag.mediaType, MediaType.ociIndex);
    assert.equal(byTag.digest, index.indexDigest);
    assert.deepEqual(byTag.body, index.index);
    const byDigest = await client.getManifest(repo, index.indexDigest);
    assert.equal(byDigest.digest, index.indexDigest);
    for (const child of index.images) {
      const m = await client.getManifest(repo, child.manifestDigest);
      assert.deepEqual(m.body, child.manifest);
    }
  });

  await t.test('distribution hides the index from an Accept list without its media type', async () => {
    // Why the client always sends the full list (FIELD-NOTES).
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/multi`, { headers: { accept: MediaType.ociManifest } });
    await res.body?.cancel();
    assert.equal(res.status, 404);
  });

  await t.test('resolveTag answers from HEAD', async () => {
    assert.deepEqual(await client.resolveTag(repo, 'v1'), { digest: image.manifestDigest, mediaType: MediaType.ociManifest, size: image.size });
    assert.deepEqual(await client.resolveTag(repo, 'multi'), { digest: index.indexDigest, mediaType: MediaType.ociIndex, size: index.size });
  });

  const layer = await bigLayer(fx);

  await t.test('fetchBlob whole: 200 from 0, every byte metered', async () => {
    const before = metered();
    const blob = await client.fetchBlob(repo, layer.digest);
    assert.equal(blob.status, 200);
    assert.equal(blob.start, 0);
    assert.equal(blob.total, layer.size);
    const data = await readAll(blob.body);
    assert.equal(sha256(data), layer.digest);
    assert.equal(metered() - before, layer.size);
  });

  await t.test('fetchBlob with an offset: 206 with the rest of the bytes', async () => {
    const offset = 123_457;
    const blob = await client.fetchBlob(repo, layer.digest, { offset });
    assert.equal(blob.status, 206);
    assert.equal(blob.start, offset);
    assert.equal(blob.total, layer.size);
    const data = await readAll(blob.body);
    assert.deepEqual(data, layer.bytes.subarray(offset));
  });

  await t.test('fetchBlob from the last byte, and past the end', async () => {
    const last = await client.fetchBlob(repo, layer.digest, { offset: layer.size - 1 });
    assert.equal(last.status, 206);
    assert.deepEqual(await readAll(last.body), layer.bytes.subarray(layer.size - 1));
    // distribution (Go's http.ServeContent) answers 416 for a range starting at or past the end.
    const err = await rejectsWithCode(client.fetchBlob(repo, layer.digest, { offset: layer.size }), UpstreamErrorCode.protocol);
    assert.match(err.message, /416/);
    assert.match(err.message, new RegExp(`blob has ${layer.size} bytes`));
  });

  await t.test('a destroyed blob body frees its connection', async () => {
    for (let i = 0; i < 20; i++) {
      const blob = await client.fetchBlob(repo, layer.digest);
      blob.body.destroy();
    }
    await client.ping();
  });

  await t.test('unknown things are UPSTREAM_NOT_FOUND with the registry code', async () => {
    const tag = await rejectsWithCode(client.getManifest(repo, 'nope'), UpstreamErrorCode.notFound);
    assert.match(tag.message, /fixtures\/app:nope/);
    assert.match(tag.message, /404/);
    assert.equal((tag.detail as { registryCode?: string }).registryCode, 'MANIFEST_UNKNOWN');
    // distribution 2.8 says MANIFEST_UNKNOWN, not NAME_UNKNOWN, for a repository it never saw.
    const name = await rejectsWithCode(client.getManifest('no/such-repo', 'v1'), UpstreamErrorCode.notFound);
    assert.equal((name.detail as { registryCode?: string }).registryCode, 'MANIFEST_UNKNOWN');
    const nameBlob = await rejectsWithCode(client.fetchBlob('no/such-repo', layer.digest), UpstreamErrorCode.notFound);
    assert.equal((nameBlob.detail as { registryCode?: string }).registryCode, 'BLOB_UNKNOWN');
    await rejectsWithCode(client.getManifest(repo, sha256(Buffer.from('nothing'))), UpstreamErrorCode.notFound);
    await rejectsWithCode(client.resolveTag(repo, 'nope'), UpstreamErrorCode.notFound);
    const blob = await rejectsWithCode(client.fetchBlob(repo, sha256(Buffer.from('nothing'))), UpstreamErrorCode.notFound);
    assert.equal((blob.detail as { registryCode?: string }).registryCode, 'BLOB_UNKNOWN');
  });

  await t.test('bad arguments are refused before any request', async () => {
    await rejectsWithCode(client.getManifest('Bad Repo', 'v1'), 'NAME_INVALID');
    await rejectsWithCode(client.getManifest(repo, '../../etc'), 'TAG_INVALID');
    await rejectsWithCode(client.fetchBlob(repo, 'sha256:abc'), 'DIGEST_INVALID');
  });
});

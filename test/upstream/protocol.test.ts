import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import test from 'node:test';
import { MediaType } from '../../src/oci/media-types.ts';
import { MAX_MANIFEST_BYTES, UpstreamErrorCode } from '../../src/upstream/index.ts';
import { rejectsWithCode, sha256, startFakeServer, upstreamClient } from './setup.ts';

const INDEX = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.dockerList, manifests: [] }));
const OTHER = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, layers: [] }));
const BLOB = Buffer.alloc(1000, 7);
const BLOB_DIGEST = sha256(BLOB);

function send(res: ServerResponse, status: number, headers: Record<string, string | number>, body?: Buffer): void {
  res.writeHead(status, headers);
  res.end(body);
}

test('a misbehaving upstream gets protocol and digest errors', async (t) => {
  const server = await startFakeServer(t, (req, res) => {
    const url = req.url ?? '';
    switch (url) {
      // A body that is not what the digest reference names.
      case `/v2/lib/app/manifests/${sha256(INDEX)}`:
        return send(res, 200, { 'content-type': MediaType.dockerList }, OTHER);
      // Docker-Content-Digest disagreeing with the body.
      case '/v2/lib/app/manifests/lying':
        return send(res, 200, { 'content-type': MediaType.dockerList, 'docker-content-digest': sha256(OTHER) }, INDEX);
      // Content-Type application/json: the media type comes from the body.
      case '/v2/lib/app/manifests/json':
        return send(res, 200, { 'content-type': 'application/json; charset=utf-8' }, INDEX);
      case '/v2/lib/app/manifests/huge-announced':
        return send(res, 200, { 'content-type': MediaType.ociManifest, 'content-length': MAX_MANIFEST_BYTES + 1 }, Buffer.alloc(0));
      case '/v2/lib/app/manifests/huge-chunked':
        res.writeHead(200, { 'content-type': MediaType.ociManifest });
        for (let i = 0; i < 5; i++) res.write(Buffer.alloc(1024 * 1024, 32));
        return void res.end();
      case '/v2/lib/app/manifests/teapot':
        return send(res, 418, { 'content-type': 'text/plain' }, Buffer.from('no'));
    }
    if (url.startsWith('/v2/lib/app/blobs/')) {
      const range = req.headers.range;
      if (url.includes('/wrong-start/') || range === 'bytes=100-') {
        return send(res, 206, { 'content-range': `bytes 50-999/1000`, 'content-length': 950 }, BLOB.subarray(50));
      }
      if (range === 'bytes=200-') return send(res, 206, { 'content-range': 'bytes=200-999', 'content-length': 800 }, BLOB.subarray(200));
      if (range === 'bytes=300-') return send(res, 206, { 'content-range': 'bytes 300-999/1000', 'content-length': 10 }, BLOB.subarray(300, 310));
      if (range === 'bytes=400-') return send(res, 200, { 'content-length': 1000 }, BLOB);
      if (range === 'bytes=500-') return send(res, 206, { 'content-range': 'bytes 500-999/*' }, BLOB.subarray(500));
      if (range === undefined) return send(res, 206, { 'content-range': 'bytes 0-999/1000', 'content-length': 1000 }, BLOB);
    }
    send(res, 404, {});
  });
  const { client } = upstreamClient(t, { url: server.url, retries: 0 });

  await t.test('manifest body not matching the digest reference', async () => {
    const err = await rejectsWithCode(client.getManifest('lib/app', sha256(INDEX)), UpstreamErrorCode.digestMismatch);
    assert.match(err.message, new RegExp(`lib/app@${sha256(INDEX)}`));
  });

  await t.test('Docker-Content-Digest not matching the body', async () => {
    await rejectsWithCode(client.getManifest('lib/app', 'lying'), UpstreamErrorCode.digestMismatch);
  });

  await t.test('media type from the body when Content-Type is generic', async () => {
    const m = await client.getManifest('lib/app', 'json');
    assert.equal(m.mediaType, MediaType.dockerList);
    assert.equal(m.digest, sha256(INDEX));
  });

  await t.test('resolveTag falls back to GET when HEAD has no Docker-Content-Digest', async () => {
    const before = server.requests.length;
    assert.deepEqual(await client.resolveTag('lib/app', 'json'), { digest: sha256(INDEX), mediaType: MediaType.dockerList, size: INDEX.length });
    assert.deepEqual(server.requests.slice(before).map((r) => r.method), ['HEAD', 'GET']);
  });

  await t.test('manifests over 4 MiB are refused', async () => {
    const a = await rejectsWithCode(client.getManifest('lib/app', 'huge-announced'), UpstreamErrorCode.protocol);
    assert.match(a.message, /exceeds the 4194304-byte limit/);
    await rejectsWithCode(client.getManifest('lib/app', 'huge-chunked'), UpstreamErrorCode.protocol);
  });

  await t.test('an unexpected status is UPSTREAM_PROTOCOL with the status', async () => {
    const err = await rejectsWithCode(client.getManifest('lib/app', 'teapot'), UpstreamErrorCode.protocol);
    assert.match(err.message, /418/);
    assert.equal((err.detail as { status?: number }).status, 418);
  });

  await t.test('bad partial answers to a ranged blob GET', async () => {
    const start = await rejectsWithCode(client.fetchBlob('lib/app', BLOB_DIGEST, { offset: 100 }), UpstreamErrorCode.protocol);
    assert.match(start.message, /from byte 50 instead of 100/);
    const syntax = await rejectsWithCode(client.fetchBlob('lib/app', BLOB_DIGEST, { offset: 200 }), UpstreamErrorCode.protocol);
    assert.match(syntax.message, /unusable Content-Range "bytes=200-999"/);
    const length = await rejectsWithCode(client.fetchBlob('lib/app', BLOB_DIGEST, { offset: 300 }), UpstreamErrorCode.protocol);
    assert.match(length.message, /Content-Length 10/);
    await rejectsWithCode(client.fetchBlob('lib/app', BLOB_DIGEST), UpstreamErrorCode.protocol);
  });

  await t.test('200 to a ranged GET starts over at 0; an unknown total is allowed', async () => {
    const full = await client.fetchBlob('lib/app', BLOB_DIGEST, { offset: 400 });
    assert.equal(full.status, 200);
    assert.equal(full.start, 0);
    assert.equal(full.total, 1000);
    full.body.destroy();
    const star = await client.fetchBlob('lib/app', BLOB_DIGEST, { offset: 500 });
    assert.equal(star.status, 206);
    assert.equal(star.start, 500);
    assert.equal(star.total, undefined);
    star.body.destroy();
  });
});

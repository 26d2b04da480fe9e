import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readdir, writeFile, stat, readFile, mkdir, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { Store } from '../../src/store/index.ts';
import { digestOf } from '../../src/lib/digest.ts';
import { MediaType } from '../../src/oci/media-types.ts';
import type { TestContext } from 'node:test';

const log = pino({ level: 'silent' });

async function openStore(t: TestContext, dir?: string, gcGraceSeconds = 0) {
  const dataDir = dir ?? (await mkdtemp(join(tmpdir(), 'hs-store-')));
  const store = await Store.open({ dataDir, gcGraceSeconds, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, log);
  t.after(async () => {
    await store.close();
    if (!dir) await rm(dataDir, { recursive: true, force: true });
  });
  return { store, dataDir };
}

function blob(text: string) {
  const data = Buffer.from(text);
  return { data, digest: digestOf(data), size: data.length };
}

async function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function imageManifest(config: { digest: string; size: number }, layers: Array<{ digest: string; size: number }>, extra: object = {}) {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: l.digest, size: l.size })),
      ...extra,
    }),
  );
}

test('ingest verifies the digest and exposes nothing on mismatch', async (t) => {
  const { store, dataDir } = await openStore(t);
  const good = blob('hello world');
  const info = await store.ingestBlob(Readable.from([good.data]), { digest: good.digest }, { repo: 'a/b' });
  assert.deepEqual(info, { digest: good.digest, size: good.size });
  assert.deepEqual(store.statBlob('a/b', good.digest), { digest: good.digest, size: good.size });
  assert.equal(store.statBlob('other', good.digest), undefined, 'blob is only visible in the repository it was linked to');
  assert.deepEqual(await readAll(store.openBlob(good.digest)), good.data);

  const wrong = digestOf('something else');
  await assert.rejects(store.ingestBlob(Readable.from([Buffer.from('tampered')]), { digest: wrong }, { repo: 'a/b' }), {
    code: 'DIGEST_INVALID',
  });
  assert.equal(store.hasBlob(wrong), false);
  await assert.rejects(store.ingestBlob(Readable.from([good.data]), { digest: good.digest, size: 3 }), { code: 'SIZE_INVALID' });
  assert.deepEqual(await readdir(join(dataDir, 'ingest')), [], 'temp files are removed after failures');
});

test('one file per digest across repositories', async (t) => {
  const { store, dataDir } = await openStore(t);
  const b = blob('shared base layer');
  await store.ingestBlob(Readable.from([b.data]), { digest: b.digest }, { repo: 'one' });
  await store.ingestBlob(Readable.from([b.data]), { digest: b.digest }, { repo: 'two' });
  const hex = b.digest.slice(7);
  assert.deepEqual(await readdir(join(dataDir, 'blobs/sha256', hex.slice(0, 2))), [hex]);
  assert.ok(store.statBlob('one', b.digest) && store.statBlob('two', b.digest));
});

test('chunked upload: offsets, out-of-order chunk rejected, resume, finish with digest check', async (t) => {
  const { store } = await openStore(t);
  const b = blob('0123456789abcdefghij');
  const up = await store.createUpload('repo');
  await store.appendUpload('repo', up.id, Readable.from([b.data.subarray(0, 8)]), { start: 0 });
  assert.equal(store.getUpload('repo', up.id).offset, 8);
  await assert.rejects(store.appendUpload('repo', up.id, Readable.from([b.data.subarray(12)]), { start: 12 }), {
    code: 'RANGE_INVALID',
  });
  await store.appendUpload('repo', up.id, Readable.from([b.data.subarray(8)]), { start: 8 });
  assert.throws(() => store.getUpload('other-repo', up.id), { code: 'BLOB_UPLOAD_UNKNOWN' });
  await store.finishUpload('repo', up.id, b.digest);
  assert.deepEqual(store.statBlob('repo', b.digest), { digest: b.digest, size: b.size });
  assert.throws(() => store.getUpload('repo', up.id), { code: 'BLOB_UPLOAD_UNKNOWN' });

  const bad = await store.createUpload('repo');
  await store.appendUpload('repo', bad.id, Readable.from([Buffer.from('abc')]));
  await assert.rejects(store.finishUpload('repo', bad.id, digestOf('abd')), { code: 'DIGEST_INVALID' });
  assert.equal(store.hasBlob(digestOf('abd')), false);
  assert.throws(() => store.getUpload('repo', bad.id), { code: 'BLOB_UPLOAD_UNKNOWN' });
  assert.throws(() => store.getUpload('repo', '../../etc/passwd'), { code: 'BLOB_UPLOAD_UNKNOWN' });
});

test('upload progress survives a restart and is re-hashed at finish', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'hs-store-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const b = blob('a resumable upload across restarts');
  const first = await Store.open({ dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, log);
  const up = await first.createUpload('r');
  await first.appendUpload('r', up.id, Readable.from([b.data.subarray(0, 10)]));
  await first.close();
  // Simulate a crash that wrote unacknowledged bytes past the recorded offset.
  await writeFile(join(dataDir, 'uploads', up.id), Buffer.concat([b.data.subarray(0, 10), Buffer.from('GARBAGE')]));
  const { store } = await openStore(t, dataDir);
  assert.equal(store.reconciled.uploadsRepaired, 1);
  assert.equal(store.getUpload('r', up.id).offset, 10);
  await store.appendUpload('r', up.id, Readable.from([b.data.subarray(10)]), { start: 10 });
  await store.finishUpload('r', up.id, b.digest);
  assert.deepEqual(await readAll(store.openBlob(b.digest)), b.data);
});

test('manifests: missing blobs rejected, tags, digests, referrers, index children', async (t) => {
  const { store } = await openStore(t);
  const config = blob('{"architecture":"amd64","os":"linux"}');
  const layer = blob('layer-bytes');
  const manifest = imageManifest(config, [layer]);
  await assert.rejects(store.putManifest('app', 'v1', manifest, MediaType.ociManifest), { code: 'MANIFEST_BLOB_UNKNOWN' });
  assert.equal(store.getManifest('app', 'v1'), undefined, 'a rejected put leaves no tag');
  for (const b of [config, layer]) await store.ingestBlob(Readable.from([b.data]), { digest: b.digest }, { repo: 'app' });
  const { digest } = await store.putManifest('app', 'v1', manifest, MediaType.ociManifest);
  assert.equal(digest, digestOf(manifest));
  assert.deepEqual(store.getManifest('app', 'v1')?.content, manifest);
  assert.equal(store.getManifest('app', digest)?.record.mediaType, MediaType.ociManifest);
  await assert.rejects(store.putManifest('app', digestOf('x'), manifest, MediaType.ociManifest), { code: 'DIGEST_INVALID' });
  await assert.rejects(store.putManifest('app', 'v2', Buffer.from('{"schemaVersion":2'), MediaType.ociManifest), {
    code: 'MANIFEST_INVALID',
  });
  await assert.rejects(store.putManifest('app', 'v2', manifest, MediaType.dockerManifest), { code: 'MANIFEST_INVALID' });

  // Referrer: an artifact whose subject is the image.
  const sig = imageManifest({ digest: config.digest, size: config.size }, [], {
    artifactType: 'application/vnd.example.sig',
    subject: { mediaType: MediaType.ociManifest, digest, size: manifest.length },
  });
  const sigPut = await store.putManifest('app', digestOf(sig), sig, MediaType.ociManifest);
  assert.deepEqual(
    store.listReferrers('app', digest).map((r) => [r.digest, r.artifactType]),
    [[sigPut.digest, 'application/vnd.example.sig']],
  );
  assert.deepEqual(store.listReferrers('app', digest, 'other/type'), []);

  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [
        { mediaType: MediaType.ociManifest, digest, size: manifest.length, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: MediaType.ociManifest, digest: digestOf('absent'), size: 10, platform: { os: 'linux', architecture: 'arm64' } },
      ],
    }),
  );
  await assert.rejects(store.putManifest('app', 'multi', index, MediaType.ociIndex), { code: 'MANIFEST_BLOB_UNKNOWN' });
  const idx = await store.putManifest('app', 'multi', index, MediaType.ociIndex, { allowMissingChildren: true });
  await assert.rejects(store.deleteManifest('app', digest), { code: 'MANIFEST_REFERENCED' });
  await store.deleteManifest('app', idx.digest);
  assert.equal(store.getManifest('app', 'multi'), undefined);
  await store.deleteManifest('app', digest);
  assert.equal(store.getManifest('app', 'v1'), undefined, 'deleting a manifest removes its tags');
  assert.deepEqual(store.listReferrers('app', digest).length, 1, 'referrers of a deleted subject stay listed');
});

test('tags and repositories paginate in lexical order', async (t) => {
  const { store } = await openStore(t);
  const config = blob('{}');
  await store.ingestBlob(Readable.from([config.data]), { digest: config.digest }, { repo: 'p' });
  const m = imageManifest(config, []);
  for (const tag of ['b', 'a', 'c', 'a1', 'z']) await store.putManifest('p', tag, m, MediaType.ociManifest);
  await store.mountBlob('p2', config.digest, 'p');
  await store.putManifest('p2', 'x', m, MediaType.ociManifest);
  assert.deepEqual(store.listTags('p'), ['a', 'a1', 'b', 'c', 'z']);
  assert.deepEqual(store.listTags('p', { n: 2 }), ['a', 'a1']);
  assert.deepEqual(store.listTags('p', { n: 2, last: 'a1' }), ['b', 'c']);
  assert.deepEqual(store.listTags('p', { last: 'c' }), ['z']);
  assert.deepEqual(store.listTags('p', { n: 0 }).length, 0);
  assert.deepEqual(store.listRepositories(), ['p', 'p2']);
  assert.deepEqual(store.listRepositories({ last: 'p' }), ['p2']);
});

test('garbage collection frees unreferenced blobs, keeps shared and pinned ones', async (t) => {
  const { store } = await openStore(t);
  const shared = blob('base');
  const onlyA = blob('only in a');
  const pinned = blob('pinned orphan');
  const cfg = blob('{"c":1}');
  for (const b of [shared, onlyA, cfg]) await store.ingestBlob(Readable.from([b.data]), { digest: b.digest }, { repo: 'a' });
  for (const b of [shared, cfg]) await store.ingestBlob(Readable.from([b.data]), { digest: b.digest }, { repo: 'b' });
  await store.ingestBlob(Readable.from([pinned.data]), { digest: pinned.digest });
  const ma = await store.putManifest('a', 'v1', imageManifest(cfg, [shared, onlyA]), MediaType.ociManifest);
  await store.putManifest('b', 'v1', imageManifest(cfg, [shared]), MediaType.ociManifest);
  const release = store.pin(pinned.digest);

  await store.deleteManifest('a', ma.digest);
  const result = await store.collectGarbage();
  assert.equal(result.manifestsRemoved, 1);
  assert.equal(result.blobsRemoved, 1);
  assert.equal(result.bytesFreed, onlyA.size);
  assert.equal(store.hasBlob(onlyA.digest), false);
  await assert.rejects(stat(store.blobPath(onlyA.digest)), { code: 'ENOENT' });
  assert.ok(store.hasBlob(shared.digest) && store.hasBlob(pinned.digest));
  release();
  const second = await store.collectGarbage();
  assert.equal(second.blobsRemoved, 1);
  assert.equal(store.hasBlob(pinned.digest), false);
  assert.deepEqual(await readAll(store.openBlob(shared.digest)), shared.data);
});

test('grace period protects fresh pushes from collection', async (t) => {
  const { store } = await openStore(t, undefined, 3600);
  const b = blob('just pushed');
  await store.ingestBlob(Readable.from([b.data]), { digest: b.digest }, { repo: 'r' });
  await store.unlinkBlob('r', b.digest);
  const result = await store.collectGarbage();
  assert.equal(result.blobsRemoved, 0);
  assert.ok(store.hasBlob(b.digest));
});

test('reconcile drops entries whose file vanished and adopts verified orphans', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'hs-store-'));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const keep = blob('keep me');
  const lost = blob('lost file');
  const orphan = blob('renamed but never indexed');
  const first = await Store.open({ dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, log);
  for (const b of [keep, lost]) await first.ingestBlob(Readable.from([b.data]), { digest: b.digest }, { repo: 'r' });
  const orphanPath = first.blobPath(orphan.digest);
  const lostPath = first.blobPath(lost.digest);
  await first.close();
  await rm(lostPath);
  await mkdir(dirname(orphanPath), { recursive: true });
  await writeFile(orphanPath, orphan.data);
  await writeFile(join(dataDir, 'ingest', 'half-written.tmp'), 'partial');
  const { store } = await openStore(t, dataDir);
  assert.equal(store.reconciled.blobRecordsDropped, 1);
  assert.equal(store.reconciled.orphanBlobsAdopted, 1);
  assert.equal(store.reconciled.tempFilesRemoved, 1);
  assert.equal(store.hasBlob(lost.digest), false);
  assert.equal(store.statBlob('r', lost.digest), undefined);
  assert.ok(store.hasBlob(orphan.digest));
  assert.deepEqual(await readFile(store.blobPath(keep.digest)), keep.data);
  // A damaged (short) file is dropped too rather than served.
  await store.close();
  await truncate(store.blobPath(keep.digest), 2);
  const { store: again } = await openStore(t, dataDir);
  assert.equal(again.hasBlob(keep.digest), false);
});

test('a range that throws on its first step releases its read transaction (data.mdb stops growing otherwise)', async (t) => {
  const { store, dataDir } = await openStore(t);
  const config = blob('{"leak":1}');
  await store.ingestBlob(Readable.from([config.data]), { digest: config.digest }, { repo: 'r' });
  const m = imageManifest(config, []);
  const rewrite = async () => {
    for (let i = 0; i < 300; i++) await store.putManifest('r', `t${i % 10}`, m, MediaType.ociManifest);
  };
  await rewrite();
  const size = async () => (await stat(join(dataDir, 'index', 'data.mdb'))).size;
  const before = await size();
  // Keys past LMDB's key size make lmdb-js throw inside the iterator's first next().
  assert.throws(() => store.listTags('r', { last: 'x'.repeat(4500) }));
  assert.throws(() => store.listRepositories({ last: 'x'.repeat(4500) }));
  await rewrite();
  assert.equal(await size(), before);

  // An error thrown inside a write transaction, from inside a range loop, releases it too.
  const index = Buffer.from(
    JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ mediaType: MediaType.ociManifest, digest: digestOf(m), size: m.length }] }),
  );
  await store.putManifest('r', 'idx', index, MediaType.ociIndex);
  await rewrite();
  const withIndex = await size();
  await assert.rejects(store.deleteManifest('r', digestOf(m)), { code: 'MANIFEST_REFERENCED' });
  await rewrite();
  assert.equal(await size(), withIndex);
});

test('only sync links blobs another repository stored; a push must have them in its repository', async (t) => {
  const { store } = await openStore(t);
  const config = blob('{"os":"linux"}');
  await store.ingestBlob(Readable.from([config.data]), { digest: config.digest }, { repo: 'a' });
  const m = imageManifest(config, []);
  await assert.rejects(store.putManifest('b', 'v1', m, MediaType.ociManifest), { code: 'MANIFEST_BLOB_UNKNOWN' });
  assert.equal(store.statBlob('b', config.digest), undefined);
  await assert.rejects(store.putManifest('a', 'v1', imageManifest({ ...config, size: config.size + 1 }, []), MediaType.ociManifest), {
    code: 'SIZE_INVALID',
  });
  assert.equal(await store.mountBlob('b', config.digest, 'c'), undefined, 'mount only from a repository that holds the blob');
  await store.commitImage('b', [{ content: m, mediaType: MediaType.ociManifest, digest: digestOf(m) }], ['v1'], { linkStoredBlobs: true });
  assert.deepEqual(store.statBlob('b', config.digest), { digest: config.digest, size: config.size });
});

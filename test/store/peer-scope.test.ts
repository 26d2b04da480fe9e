import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { Store } from '../../src/store/index.ts';
import { openIndexDb } from '../../src/store/index-db.ts';
import { digestOf } from '../../src/lib/digest.ts';
import { MediaType } from '../../src/oci/media-types.ts';

const log = pino({ level: 'silent' });
const open = (dataDir: string) => Store.open({ dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, log);

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hs-store-scope-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function blob(text: string) {
  const data = Buffer.from(text);
  return { data, digest: digestOf(data), size: data.length };
}

test('blob reference index: a stored manifest makes its blobs referenced, GC of the manifest unmakes them, an old store is indexed at open', async (t) => {
  const dataDir = await tempDir(t);
  let store = await open(dataDir);
  const config = blob('{"os":"linux"}');
  const layer = blob('layer bytes');
  const loose = blob('pushed, never listed');
  for (const b of [config, layer, loose]) await store.ingestBlob(Readable.from([b.data]), { digest: b.digest, size: b.size }, { repo: 'a/b' });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }],
    }),
  );
  const { digest } = await store.putManifest('a/b', 'v1', manifest, MediaType.ociManifest);
  assert.deepEqual([config, layer, loose].map((b) => store.isBlobReferenced(b.digest)), [true, true, false]);

  // A store written before the index existed: the index is built once at open.
  await store.close();
  const db = openIndexDb(join(dataDir, 'index'));
  await db.root.transaction(() => {
    for (const key of db.blobRefs.getKeys()) db.blobRefs.remove(key);
  });
  await db.root.close();
  store = await open(dataDir);
  t.after(() => store.close());
  assert.equal(store.isBlobReferenced(layer.digest), true, 'rebuilt at open');

  await store.deleteManifest('a/b', digest);
  await store.collectGarbage();
  assert.equal(store.isBlobReferenced(layer.digest), false, 'gone with the manifest record');
});

test('GC removes partial downloads nobody wants (record and file), keeps pinned and wanted ones', async (t) => {
  const dataDir = await tempDir(t);
  const store = await open(dataDir);
  t.after(() => store.close());
  const [stray, pinned, wanted] = ['stray', 'pinned', 'wanted'].map((s) => digestOf(Buffer.from(s)));
  for (const d of [stray!, pinned!, wanted!]) await store.beginPartial(d, 1000);
  const release = store.pin(pinned!);
  store.keepPartials((d) => d === wanted);
  const result = await store.collectGarbage();
  release();
  assert.equal(result.partialsRemoved, 1);
  assert.deepEqual(store.listPartials().map((p) => p.digest).sort(), [pinned!, wanted!].sort());
  assert.deepEqual((await readdir(join(dataDir, 'partial'))).sort(), [pinned!, wanted!].map((d) => d.replace(':', '-')).sort());
  // Once unpinned and not wanted any more, the next GC takes them too.
  store.keepPartials(() => false);
  assert.equal((await store.collectGarbage()).partialsRemoved, 2);
  assert.deepEqual(await readdir(join(dataDir, 'partial')), []);
});

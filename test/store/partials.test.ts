import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Store } from '../../src/store/index.ts';

const log = pino({ level: 'silent' });
const DIGEST = `sha256:${'ab'.repeat(32)}`;

async function openStore(t: TestContext): Promise<{ store: Store; dataDir: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'hs-partials-'));
  const store = await Store.open({ dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, log);
  t.after(async () => {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return { store, dataDir };
}

test('a partial keeps the bytes written after its checkpoint (a kill -9 tail) while they fit the blob; longer, it is cut to the checkpoint', async (t) => {
  const { store } = await openStore(t);
  const first = await store.beginPartial(DIGEST, 1000);
  assert.deepEqual([first.offset, first.durable], [0, 0]);
  await appendFile(first.path, Buffer.alloc(600, 1));
  await store.checkpointPartial(DIGEST, 400);

  // 600 bytes on disk, 400 recorded: the 200 after the checkpoint are kept as a tail.
  const again = await store.beginPartial(DIGEST, 1000);
  assert.deepEqual([again.offset, again.durable], [600, 400]);
  assert.equal((await stat(again.path)).size, 600);
  assert.equal(store.partialSize(DIGEST), 1000);

  // More bytes than the blob has: nothing after the checkpoint can be right.
  await appendFile(again.path, Buffer.alloc(500, 2));
  const cut = await store.beginPartial(DIGEST, 1000);
  assert.deepEqual([cut.offset, cut.durable], [400, 400]);
  assert.equal((await stat(cut.path)).size, 400);

  // Another size: a different blob as far as the file goes, from zero.
  const other = await store.beginPartial(DIGEST, 2000);
  assert.deepEqual([other.offset, other.durable], [0, 0]);
});

test("the pull-through cache's partials survive a sync run's orphan sweep; others it does not want go", async (t) => {
  const { store } = await openStore(t);
  const mine = `sha256:${'cd'.repeat(32)}`;
  await store.beginPartial(DIGEST, 1000, { cache: true });
  await store.beginPartial(mine, 1000);
  await store.discardOrphanPartials(new Set());
  assert.deepEqual(store.listPartials().map((p) => p.digest), [DIGEST]);
  // Without a size the record says so: nothing to resume by size.
  await store.beginPartial(mine, undefined, { cache: true });
  assert.equal(store.partialSize(mine), undefined);
});

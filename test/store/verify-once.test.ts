import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { Store } from '../../src/store/index.ts';
import { isSatelliteError } from '../../src/lib/errors.ts';

test('one blob verification at a time: a second one while the first runs is refused with VERIFY_RUNNING; after it, it runs', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'hs-verify-once-'));
  const store = await Store.open({ dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, pino({ level: 'silent' }));
  t.after(async () => {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  for (let i = 0; i < 4; i++) {
    const bytes = Buffer.alloc(2_000_000, i + 1);
    await store.ingestBlob(Readable.from([bytes]), { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length });
  }

  const first = store.verifyBlobs({ repair: true });
  await assert.rejects(store.verifyBlobs(), (err: unknown) => {
    assert.ok(isSatelliteError(err, 'VERIFY_RUNNING'), String(err));
    assert.match((err as Error).message, /^a blob verification with repair is already running \(started \d+s ago\); try again when it ends$/);
    return true;
  });
  const report = await first;
  assert.equal(report.blobs, 4);
  assert.equal(report.bad.length, 0);
  // The first ended (also when it fails): the next one runs.
  assert.equal((await store.verifyBlobs()).blobs, 4);
});

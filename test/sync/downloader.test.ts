import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { Store } from '../../src/store/index.ts';
import { downloadBlob, type DownloadDeps } from '../../src/sync/downloader.ts';
import type { UpstreamPort } from '../../src/sync/upstream-port.ts';

const log = pino({ level: 'silent' });
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A body that delivers `bytes` then fails like a dropped connection. */
function cutBody(bytes: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      // Once: every byte pushed is now kept when the body fails, so a second push would be real bytes.
      if (sent) return;
      sent = true;
      this.push(bytes);
      setImmediate(() => this.destroy(Object.assign(new Error('other side closed'), { code: 'UPSTREAM_UNREACHABLE' })));
    },
  });
}

async function openStore(t: import('node:test').TestContext) {
  const dataDir = await mkdtemp(join(tmpdir(), 'hs-dl-'));
  const store = await Store.open({ dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, log);
  t.after(async () => {
    await store.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  return store;
}

function deps(store: Store, upstream: Partial<UpstreamPort>): DownloadDeps {
  return {
    store,
    upstream: upstream as UpstreamPort,
    log,
    gate: () => undefined,
    checkpointBytes: 65536,
    attempts: 3,
    backoffBaseMs: 1,
    backoffMaxMs: 5,
  };
}

test('an upstream that ignores Range (200) makes the download start over, and the result is exact', async (t) => {
  const store = await openStore(t);
  const blob = randomBytes(300_000);
  const digest = sha(blob);
  const calls: number[] = [];
  const upstream: Partial<UpstreamPort> = {
    async fetchBlob(_repo, _digest, opts) {
      calls.push(opts?.offset ?? 0);
      // First: 100 KB then a cut. Then: always the whole blob from 0, whatever was asked.
      if (calls.length === 1) return { status: 200, start: 0, total: blob.length, body: cutBody(blob.subarray(0, 100_000)) };
      return { status: 200, start: 0, total: blob.length, body: Readable.from([blob]) };
    },
  };
  const result = await downloadBlob(deps(store, upstream), 'r', { digest, size: blob.length }, new AbortController().signal);
  assert.deepEqual(calls, [0, 100_000], 'the second request asked to resume');
  assert.equal(result.bytesReceived, 100_000 + blob.length, 'then took the full body from zero');
  assert.deepEqual(await readFile(store.blobPath(digest)), blob);
  assert.deepEqual(store.listPartials(), []);
});

test('a resumed download continues with Range and hashes across the resume', async (t) => {
  const store = await openStore(t);
  const blob = randomBytes(500_000);
  const digest = sha(blob);
  const calls: number[] = [];
  const upstream: Partial<UpstreamPort> = {
    async fetchBlob(_repo, _digest, opts) {
      const offset = opts?.offset ?? 0;
      calls.push(offset);
      const end = Math.min(blob.length, offset + 150_000);
      const body = end < blob.length ? cutBody(blob.subarray(offset, end)) : Readable.from([blob.subarray(offset)]);
      return { status: offset ? 206 : 200, start: offset, total: blob.length, body };
    },
  };
  const result = await downloadBlob(deps(store, upstream), 'r', { digest, size: blob.length }, new AbortController().signal);
  assert.deepEqual(calls, [0, 150_000, 300_000, 450_000]);
  assert.equal(result.bytesReceived, blob.length, 'no byte fetched twice');
  assert.deepEqual(await readFile(store.blobPath(digest)), blob);
});

test('a size the upstream contradicts, too many bytes, or no progress fail without storing anything', async (t) => {
  const store = await openStore(t);
  const blob = randomBytes(10_000);
  const digest = sha(blob);
  const signal = new AbortController().signal;
  await assert.rejects(
    downloadBlob(deps(store, { fetchBlob: async () => ({ status: 200, start: 0, total: 9_999, body: Readable.from([blob]) }) }), 'r', { digest, size: blob.length }, signal),
    { code: 'SIZE_MISMATCH' },
  );
  await assert.rejects(
    downloadBlob(deps(store, { fetchBlob: async () => ({ status: 200, start: 0, body: Readable.from([blob, Buffer.from('extra')]) }) }), 'r', { digest, size: blob.length }, signal),
    { code: 'SIZE_MISMATCH' },
  );
  const other = randomBytes(10_000);
  let tries = 0;
  await assert.rejects(
    downloadBlob(
      deps(store, {
        fetchBlob: async () => {
          tries++;
          throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'UPSTREAM_UNREACHABLE' });
        },
      }),
      'r',
      { digest: sha(other), size: other.length },
      signal,
    ),
    /ECONNREFUSED/,
  );
  assert.equal(tries, 3, 'gives up after the configured attempts without progress');
  assert.equal(store.hasBlob(sha(other)), false);
  assert.equal(store.hasBlob(digest), false);
  // The verified-size prefix the misbehaving upstream delivered is kept as a partial for next time.
  assert.deepEqual(store.listPartials().find((p) => p.digest === digest)?.offset, blob.length);
});

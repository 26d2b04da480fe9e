import assert from 'node:assert/strict';
import test from 'node:test';
import { freePort } from '../helpers/ports.ts';
import { UpstreamErrorCode } from '../../src/upstream/index.ts';
import { isSatelliteError } from '../../src/lib/errors.ts';
import { readUntilError, rejectsWithCode, sha256, startFakeServer, upstreamClient } from './setup.ts';

test('a closed port is UPSTREAM_UNREACHABLE at once', async (t) => {
  const port = await freePort();
  const { client } = upstreamClient(t, { url: `http://127.0.0.1:${port}` });
  const started = Date.now();
  const ping = await rejectsWithCode(client.ping(), UpstreamErrorCode.unreachable);
  assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  assert.match(ping.message, /connection refused/);
  assert.match(ping.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
  assert.equal((ping.detail as { errno?: string }).errno, 'ECONNREFUSED');
  const blob = await rejectsWithCode(client.fetchBlob('lib/app', sha256(Buffer.from('x'))), UpstreamErrorCode.unreachable);
  assert.match(blob.message, /blob lib\/app@sha256:/);
  await rejectsWithCode(client.getManifest('lib/app', 'v1'), UpstreamErrorCode.unreachable);
});

test('a body that stalls fails after bodyIdleTimeoutMs, with the bytes received', async (t) => {
  const server = await startFakeServer(t, (_req, res) => {
    res.writeHead(200, { 'content-length': 100_000 });
    res.write(Buffer.alloc(10_000));
    // ...and nothing more
  });
  const { client } = upstreamClient(t, { url: server.url, bodyIdleTimeoutMs: 300 });
  const blob = await client.fetchBlob('lib/app', sha256(Buffer.from('x')));
  const started = Date.now();
  const { data, error } = await readUntilError(blob.body);
  assert.equal(data.length, 10_000);
  assert.ok(isSatelliteError(error, UpstreamErrorCode.unreachable), String(error));
  assert.equal((error.detail as { errno?: string }).errno, 'UND_ERR_BODY_TIMEOUT');
  assert.equal((error.detail as { bytes?: number }).bytes, 10_000);
  assert.ok(Date.now() - started < 3000);
});

test('an aborted fetch is the caller\'s AbortError, not an upstream error', async (t) => {
  const server = await startFakeServer(t, () => {
    // never answers
  });
  const { client } = upstreamClient(t, { url: server.url });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  await assert.rejects(client.fetchBlob('lib/app', sha256(Buffer.from('x')), { signal: controller.signal }), (err: Error) => {
    assert.ok(!isSatelliteError(err), String(err));
    return err.name === 'AbortError';
  });
});

import assert from 'node:assert/strict';
import test from 'node:test';
import { MediaType } from '../../src/oci/media-types.ts';
import { UpstreamErrorCode } from '../../src/upstream/index.ts';
import { rejectsWithCode, sendRegistryError, sha256, startFakeServer, upstreamClient } from './setup.ts';

const MANIFEST = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config: {}, layers: [] }));

function sendManifest(res: import('node:http').ServerResponse): void {
  res.writeHead(200, { 'content-type': MediaType.ociManifest, 'content-length': MANIFEST.length, 'docker-content-digest': sha256(MANIFEST) });
  res.end(MANIFEST);
}

test('429 with Retry-After: 1 is waited for, then the request succeeds', async (t) => {
  const server = await startFakeServer(t, (_req, res, n) => {
    if (n === 1) sendRegistryError(res, 429, 'TOOMANYREQUESTS', { 'retry-after': '1' });
    else sendManifest(res);
  });
  const { client } = upstreamClient(t, { url: server.url });
  const started = Date.now();
  const m = await client.getManifest('lib/app', 'v1');
  const elapsed = Date.now() - started;
  assert.equal(m.digest, sha256(MANIFEST));
  assert.equal(server.requests.length, 2);
  assert.ok(elapsed >= 950 && elapsed < 3000, `waited ${elapsed} ms`);
});

test('Retry-After as an HTTP date, on 503', async (t) => {
  const server = await startFakeServer(t, (_req, res, n) => {
    if (n === 1) sendRegistryError(res, 503, 'UNAVAILABLE', { 'retry-after': new Date(Date.now() + 1500).toUTCString() });
    else sendManifest(res);
  });
  const { client } = upstreamClient(t, { url: server.url });
  const started = Date.now();
  await client.resolveTag('lib/app', 'v1');
  // HTTP dates have 1 s resolution: the wait is 0.5-1.5 s.
  assert.ok(Date.now() - started >= 400, `waited ${Date.now() - started} ms`);
  assert.equal(server.requests.length, 2);
});

test('429 beyond the retries, or with a Retry-After over the cap, is UPSTREAM_RATE_LIMITED with retryAfterMs', async (t) => {
  const server = await startFakeServer(t, (_req, res) => sendRegistryError(res, 429, 'TOOMANYREQUESTS', { 'retry-after': '0' }));
  const { client } = upstreamClient(t, { url: server.url, retries: 2 });
  const err = await rejectsWithCode(client.getManifest('lib/app', 'v1'), UpstreamErrorCode.rateLimited);
  assert.equal(server.requests.length, 3, 'first attempt + 2 retries');
  assert.equal((err.detail as { retryAfterMs?: number }).retryAfterMs, 0);
  assert.match(err.message, /lib\/app:v1/);
  assert.match(err.message, /429/);

  const slow = await startFakeServer(t, (_req, res) => sendRegistryError(res, 429, 'TOOMANYREQUESTS', { 'retry-after': '120' }));
  const capped = upstreamClient(t, { url: slow.url, maxRetryAfterMs: 5000 }).client;
  const started = Date.now();
  const err2 = await rejectsWithCode(capped.ping(), UpstreamErrorCode.rateLimited);
  assert.ok(Date.now() - started < 1000, 'does not wait beyond the cap');
  assert.equal(slow.requests.length, 1);
  assert.equal((err2.detail as { retryAfterMs?: number }).retryAfterMs, 120_000);
});

test('fetchBlob never retries: 503 and 429 come back with retryAfterMs', async (t) => {
  const digest = sha256(Buffer.from('blob'));
  const server = await startFakeServer(t, (req, res) => {
    if (req.url?.includes('/busy/')) sendRegistryError(res, 429, 'TOOMANYREQUESTS', { 'retry-after': '7' });
    else res.writeHead(503, { 'retry-after': '3' }).end('maintenance');
  });
  const { client } = upstreamClient(t, { url: server.url });
  const down = await rejectsWithCode(client.fetchBlob('lib/app', digest), UpstreamErrorCode.unreachable);
  assert.deepEqual(down.detail, { repo: 'lib/app', reference: digest, status: 503, retryAfterMs: 3000 });
  const busy = await rejectsWithCode(client.fetchBlob('busy/app', digest, { offset: 10 }), UpstreamErrorCode.rateLimited);
  assert.equal((busy.detail as { retryAfterMs?: number }).retryAfterMs, 7000);
  assert.equal(server.requests.length, 2);
});

test('a reset connection is retried with backoff for small requests', async (t) => {
  const server = await startFakeServer(t, (req, res, n) => {
    if (n <= 2) req.socket.destroy();
    else sendManifest(res);
  });
  const { client } = upstreamClient(t, { url: server.url });
  const m = await client.getManifest('lib/app', 'v1');
  assert.equal(m.digest, sha256(MANIFEST));
  assert.equal(server.requests.length, 3);

  const dead = await startFakeServer(t, (req) => req.socket.destroy());
  const once = upstreamClient(t, { url: dead.url, retries: 1 }).client;
  const err = await rejectsWithCode(once.getManifest('lib/app', 'v1'), UpstreamErrorCode.unreachable);
  assert.equal(dead.requests.length, 2);
  assert.match(err.message, /reset or closed/);
});

test('500 is retried, then UPSTREAM_PROTOCOL', async (t) => {
  const server = await startFakeServer(t, (_req, res) => sendRegistryError(res, 500, 'UNKNOWN'));
  const { client } = upstreamClient(t, { url: server.url, retries: 1 });
  const err = await rejectsWithCode(client.getManifest('lib/app', 'v1'), UpstreamErrorCode.protocol);
  assert.match(err.message, /500/);
  assert.equal(server.requests.length, 2);
});

test('an abort stops the Retry-After wait', async (t) => {
  const server = await startFakeServer(t, (_req, res) => sendRegistryError(res, 429, 'TOOMANYREQUESTS', { 'retry-after': '30' }));
  const { client } = upstreamClient(t, { url: server.url });
  const started = Date.now();
  await assert.rejects(client.getManifest('lib/app', 'v1', AbortSignal.timeout(200)), (err: Error) => err.name === 'AbortError' || err.name === 'TimeoutError');
  assert.ok(Date.now() - started < 2000);
});

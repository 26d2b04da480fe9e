import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import test from 'node:test';
import { seededBytes } from '../helpers/fixtures.ts';
import { UpstreamErrorCode } from '../../src/upstream/index.ts';
import { readAll, rejectsWithCode, sendRegistryError, sha256, startFakeServer, upstreamClient } from './setup.ts';

const BLOB = seededBytes('redirect-blob', 300_000);
const DIGEST = sha256(BLOB);
const USER = 'sat';
const PASSWORD = 'pw';
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

/** Serves BLOB with Range support (like object storage would). */
function serveBytes(req: IncomingMessage, res: ServerResponse): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m) {
    const start = Number(m[1]);
    res.writeHead(206, { 'content-length': BLOB.length - start, 'content-range': `bytes ${start}-${BLOB.length - 1}/${BLOB.length}` });
    res.end(BLOB.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': BLOB.length, 'content-type': 'application/octet-stream' });
  res.end(BLOB);
}

test('blob redirects: credentials stay with the registry origin', async (t) => {
  // "Object storage" on another 127.0.0.1 port: a different origin.
  const storage = await startFakeServer(t, (req, res) => serveBytes(req, res));
  let redirects = 0;
  const registry = await startFakeServer(t, (req, res) => {
    if (req.headers.authorization !== BASIC) {
      sendRegistryError(res, 401, 'UNAUTHORIZED', { 'www-authenticate': 'Basic realm="fake"' });
      return;
    }
    const url = req.url ?? '';
    if (url === `/v2/lib/app/blobs/${DIGEST}`) {
      redirects++;
      res.writeHead(307, { location: `${storage.url}/bucket/${DIGEST.slice(7)}?X-Amz-Signature=secret` });
      res.end();
    } else if (url === `/v2/same/app/blobs/${DIGEST}`) {
      res.writeHead(302, { location: `/internal/${DIGEST}` });
      res.end('redirecting');
    } else if (url === `/internal/${DIGEST}`) {
      serveBytes(req, res);
    } else if (url === `/v2/loop/app/blobs/${DIGEST}`) {
      res.writeHead(307, { location: url });
      res.end();
    } else {
      sendRegistryError(res, 404, 'BLOB_UNKNOWN');
    }
  });
  const { client, metered } = upstreamClient(t, { url: registry.url, username: USER, password: PASSWORD });

  await t.test('cross-origin: followed without Authorization, Range kept', async () => {
    const whole = await client.fetchBlob('lib/app', DIGEST);
    assert.equal(whole.status, 200);
    assert.equal(sha256(await readAll(whole.body)), DIGEST);
    const rest = await client.fetchBlob('lib/app', DIGEST, { offset: 1000 });
    assert.equal(rest.status, 206);
    assert.equal(rest.start, 1000);
    assert.equal(rest.total, BLOB.length);
    assert.deepEqual(await readAll(rest.body), BLOB.subarray(1000));
    assert.equal(redirects, 2);
    assert.equal(storage.requests.length, 2);
    for (const r of storage.requests) assert.equal(r.headers.authorization, undefined, 'no Authorization to another origin');
    assert.equal(storage.requests[1]!.headers.range, 'bytes=1000-');
    assert.match(storage.requests[0]!.url, /X-Amz-Signature=secret/);
    assert.ok(metered() >= BLOB.length * 2 - 1000);
  });

  await t.test('same origin: followed with Authorization', async () => {
    const blob = await client.fetchBlob('same/app', DIGEST);
    assert.equal(sha256(await readAll(blob.body)), DIGEST);
    const hop = registry.requests.find((r) => r.url === `/internal/${DIGEST}`);
    assert.equal(hop?.headers.authorization, BASIC);
  });

  await t.test('a redirect loop stops after 5 hops', async () => {
    const before = registry.requests.length;
    const err = await rejectsWithCode(client.fetchBlob('loop/app', DIGEST), UpstreamErrorCode.protocol);
    assert.match(err.message, /more than 5 redirects/);
    assert.equal(registry.requests.length - before, 6);
  });

  await t.test('object storage refusing the signed URL is a protocol error, not an auth one', async () => {
    storage.server.removeAllListeners('request');
    storage.server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
    });
    const err = await rejectsWithCode(client.fetchBlob('lib/app', DIGEST), UpstreamErrorCode.protocol);
    assert.match(err.message, /403/);
    assert.doesNotMatch(err.message, /secret/, 'signed query strings stay out of messages');
    assert.equal((err.detail as { origin?: string }).origin, storage.url);
  });
});

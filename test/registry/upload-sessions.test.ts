import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSatellite, type Satellite } from '../helpers/satellite.ts';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request from a given loopback address (127.0.0.x: each one a different client). */
function call(sat: Satellite, from: string, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(`${sat.url}${path}`, { method, localAddress: from, agent: false, headers: { ...headers, ...(body ? { 'Content-Length': String(body.length) } : {}) } });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const open = (sat: Satellite, from: string, repo = 'abandon/app') => call(sat, from, 'POST', `/v2/${repo}/blobs/uploads/`);
const uploadFiles = async (sat: Satellite) => (await readdir(join(sat.dataDir, 'uploads'))).length;

test('open upload sessions are capped per address and in total: 429 TOOMANYREQUESTS with an OCI error body', async (t) => {
  const sat = await startSatellite(t, { config: { registry: { maxUploadSessions: 6, maxUploadSessionsPerClient: 4 } } });
  const a: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await open(sat, '127.0.0.2');
    assert.equal(r.status, 202);
    a.push(r.headers.location as string);
  }
  const over = await open(sat, '127.0.0.2');
  assert.equal(over.status, 429);
  assert.ok(Number(over.headers['retry-after']) > 0);
  const err = JSON.parse(over.body) as { errors: Array<{ code: string; message: string }> };
  assert.equal(err.errors[0]!.code, 'TOOMANYREQUESTS');
  assert.match(err.errors[0]!.message, /4 from this address/);

  // Another address has its own share, until the total is reached.
  assert.equal((await open(sat, '127.0.0.3')).status, 202);
  assert.equal((await open(sat, '127.0.0.3')).status, 202);
  const full = await open(sat, '127.0.0.3');
  assert.equal(full.status, 429);
  assert.match(full.body, /6 in total/);
  assert.equal(await uploadFiles(sat), 6, 'nothing was created past the caps');

  // Finishing or cancelling a session frees its place.
  assert.equal((await call(sat, '127.0.0.2', 'DELETE', a[0]!)).status, 204);
  const blob = Buffer.from('a finished upload');
  const { createHash } = await import('node:crypto');
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  assert.equal((await call(sat, '127.0.0.2', 'PUT', `${a[1]!}?digest=${digest}`, blob)).status, 201);
  assert.equal((await open(sat, '127.0.0.3')).status, 202);
  assert.equal((await open(sat, '127.0.0.2')).status, 202);
  assert.equal((await open(sat, '127.0.0.2')).status, 429);
});

test('defaults: one address cannot leave thousands of sessions open (64 per address)', async (t) => {
  const sat = await startSatellite(t);
  const statuses: number[] = [];
  for (let i = 0; i < 70; i++) statuses.push((await open(sat, '127.0.0.2')).status);
  assert.deepEqual(statuses.slice(0, 64), Array(64).fill(202));
  assert.deepEqual(statuses.slice(64), Array(6).fill(429));
  assert.equal(await uploadFiles(sat), 64);
  assert.equal((await open(sat, '127.0.0.3')).status, 202, 'another address is not blocked');
});

test('abandoned sessions are swept while running; a session still receiving chunks is kept', async (t) => {
  const sat = await startSatellite(t, { config: { store: { uploadTtlSeconds: 2, uploadSweepIntervalSeconds: 1 } } });
  const abandoned: string[] = [];
  for (let i = 0; i < 3; i++) abandoned.push((await open(sat, '127.0.0.2')).headers.location as string);
  assert.equal((await call(sat, '127.0.0.2', 'PATCH', abandoned[0]!, Buffer.alloc(50_000, 1))).status, 202);
  const live = (await open(sat, '127.0.0.3')).headers.location as string;

  // The live one gets a chunk every 700 ms (each refreshes its idle time); the others get nothing.
  let offset = 0;
  for (let i = 0; i < 7; i++) {
    const chunk = Buffer.alloc(1000, i);
    const r = await call(sat, '127.0.0.3', 'PATCH', live, chunk, { 'Content-Range': `${offset}-${offset + chunk.length - 1}` });
    assert.equal(r.status, 202);
    offset += chunk.length;
    await sleep(700);
  }
  for (const loc of abandoned) {
    const r = await call(sat, '127.0.0.2', 'GET', loc);
    assert.equal(r.status, 404, `${loc} was swept`);
    assert.equal((JSON.parse(r.body) as { errors: Array<{ code: string }> }).errors[0]!.code, 'BLOB_UPLOAD_UNKNOWN');
  }
  const kept = await call(sat, '127.0.0.3', 'GET', live);
  assert.equal(kept.status, 204);
  assert.equal(kept.headers.range, `0-${offset - 1}`);
  assert.equal(await uploadFiles(sat), 1, 'the swept sessions left no files');
  await sat.waitForLog(/"msg":"expired abandoned upload sessions"/);
});

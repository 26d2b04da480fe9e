import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSatellite, type Satellite } from '../helpers/satellite.ts';
import { sha256 } from '../helpers/fixtures.ts';

/** Both are loopback: the satellite sees two different clients. */
const VICTIM = '127.0.0.1';
const ATTACKER = '127.0.0.2';

interface SlowBody {
  socket: Socket;
  /** The status of the answer, or 'closed' when the server cut the connection without one. */
  outcome: Promise<number | 'closed'>;
  closed: Promise<unknown>;
}

/** Sends the headers of a request with a large body, then the body's first byte, from `from`. */
async function slowBody(sat: Satellite, from: string, method: string, path: string, length = 1_000_000): Promise<SlowBody> {
  const socket = connect({ host: '127.0.0.1', port: sat.port, localAddress: from });
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write(`${method} ${path} HTTP/1.1\r\nHost: ${sat.host}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n${length > 0 ? 'x' : ''}`);
  // once() rejects on 'error': a server that resets the socket (unread bytes) emits ECONNRESET first.
  const closed = once(socket, 'close').catch(() => undefined);
  let head = '';
  const outcome = new Promise<number | 'closed'>((resolve) => {
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (m) resolve(Number(m[1]));
    });
    socket.on('close', () => resolve('closed'));
  });
  return { socket, outcome, closed };
}

async function pushBlob(sat: Satellite, repo: string, body: Buffer): Promise<string> {
  const digest = sha256(body);
  const res = await fetch(`${sat.url}/v2/${repo}/blobs/uploads/?digest=${digest}`, { method: 'POST', body });
  assert.equal(res.status, 201);
  await res.arrayBuffer();
  return digest;
}

test('260 slow upload bodies from one host leave other clients served: blob GET 200 within 1 s', async (t) => {
  const sat = await startSatellite(t);
  const blob = Buffer.alloc(100_000, 'x'); // slowBody sends an 'x' first
  const digest = await pushBlob(sat, 'victim/app', blob);

  const slow: SlowBody[] = [];
  t.after(() => slow.forEach((s) => s.socket.destroy()));
  for (let i = 0; i < 260; i++) slow.push(await slowBody(sat, ATTACKER, 'POST', `/v2/attacker/junk/blobs/uploads/?digest=sha256:${'a'.repeat(64)}`));
  // Past its per-client cap (64 of the 256 slots) the attacker is told 429 at once; the rest hang.
  const answered = await Promise.race([Promise.all(slow.map((s) => s.outcome)), sleep(3000).then(() => undefined)]);
  assert.equal(answered, undefined, 'the capped slow bodies are still being held');
  const early = (await Promise.all(slow.map((s) => Promise.race([s.outcome, Promise.resolve('pending' as const)])))).filter((o) => o !== 'pending');
  assert.equal(early.length, 260 - 64, 'all but 64 answered at once');
  assert.ok(early.every((o) => o === 429));
  // The refused ones are closed, not left trickling into a socket.
  const settled = await Promise.all(slow.map((s) => Promise.race([s.outcome, Promise.resolve('pending' as const)])));
  const refused = slow.filter((_, i) => settled[i] === 429);
  const closedAll = await Promise.race([Promise.all(refused.map((s) => s.closed)).then(() => true), sleep(3000).then(() => false)]);
  assert.ok(closedAll, 'connections over the cap are closed by the server');
  // One byte every few seconds keeps the held ones alive (well under the default 30 s rate window).
  const drip = setInterval(() => slow.forEach((s) => s.socket.writable && s.socket.write('x')), 3000);
  t.after(() => clearInterval(drip));

  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    const res = await fetch(`${sat.url}/v2/victim/app/blobs/${digest}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const ms = performance.now() - started;
    assert.equal(res.status, 200, 'another client is served');
    assert.equal(bytes.length, blob.length);
    assert.ok(ms < 1000, `blob GET took ${ms.toFixed(0)} ms`);
  }
  // Another address is a different client as well (the victim is 127.0.0.1; this one is explicit).
  const other = await slowBody(sat, '127.0.0.3', 'POST', `/v2/other/app/blobs/uploads/?digest=${digest}`, blob.length);
  other.socket.write(blob.subarray(1));
  assert.equal(await other.outcome, 201);
  other.socket.destroy();
});

test('a body that trickles in below the minimum rate is cut; what arrived stays resumable', async (t) => {
  const sat = await startSatellite(t, { config: { registry: { bodyMinBytesPerSecond: 1000, bodyRateWindowSeconds: 1 } } });
  const start = await fetch(`${sat.url}/v2/slow/app/blobs/uploads/`, { method: 'POST' });
  assert.equal(start.status, 202);
  const location = start.headers.get('location')!;
  await start.arrayBuffer();

  const started = performance.now();
  const body = await slowBody(sat, ATTACKER, 'PATCH', location, 1_000_000);
  const drip = setInterval(() => body.socket.writable && body.socket.write('y'), 200);
  t.after(() => clearInterval(drip));
  assert.equal(await body.outcome, 'closed', 'the server cut the connection');
  const ms = performance.now() - started;
  assert.ok(ms < 5000, `cut after ${ms.toFixed(0)} ms`);
  clearInterval(drip);
  await sat.waitForLog(/"msg":"request body too slow: connection cut"/);

  // The session survives with the bytes that reached the disk: the client can resume from there.
  await sleep(200);
  const status = await fetch(`${sat.url}${location}`);
  assert.equal(status.status, 204);
  const received = Number(/^0-(\d+)$/.exec(status.headers.get('range') ?? '')![1]) + 1;
  assert.ok(received >= 1, `range ${status.headers.get('range')}`);

  // A client at ordinary speed is not affected by the rule.
  const fast = Buffer.alloc(3_000_000, 1);
  const digest = await pushBlob(sat, 'slow/app', fast);
  const back = await fetch(`${sat.url}/v2/slow/app/blobs/${digest}`);
  assert.equal(Buffer.from(await back.arrayBuffer()).length, fast.length);
});

test('one address is capped below the global request limit (429 TOOMANYREQUESTS with Retry-After)', async (t) => {
  const sat = await startSatellite(t, { config: { registry: { maxConcurrentRequests: 20, maxConcurrentRequestsPerClient: 4 } } });
  const held: SlowBody[] = [];
  t.after(() => held.forEach((s) => s.socket.destroy()));
  for (let i = 0; i < 4; i++) held.push(await slowBody(sat, ATTACKER, 'POST', `/v2/a/b/blobs/uploads/?digest=sha256:${'b'.repeat(64)}`));
  await sleep(300);
  const fifth = await slowBody(sat, ATTACKER, 'GET', '/v2/', 0);
  assert.equal(await fifth.outcome, 429);
  fifth.socket.destroy();
  const res = await fetch(`${sat.url}/v2/`);
  assert.equal(res.status, 200, 'another address still gets in');
  await res.arrayBuffer();
  held[0]!.socket.destroy();
  await sleep(300);
  const again = await slowBody(sat, ATTACKER, 'GET', '/v2/', 0);
  assert.equal(await again.outcome, 200, 'a freed slot is usable again');
  again.socket.destroy();
});

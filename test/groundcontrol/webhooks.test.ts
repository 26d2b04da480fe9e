import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmod, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { addAndRegister, connectSatellite, eventually, spawnGroundControl, startGroundControl, TEST_ADMIN_TOKEN, type GroundControl } from '../helpers/groundcontrol.ts';
import { defer, type Teardown } from '../helpers/cleanup.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { openGcDb } from '../../src/groundcontrol/db/db.ts';
import { appendEvent } from '../../src/groundcontrol/fleet/events.ts';
import { nextLine } from '../../src/groundcontrol/webhooks/queue.ts';
import { verifySignature } from '../../src/groundcontrol/webhooks/index.ts';
import { loadGroundControlConfig } from '../../src/groundcontrol/config.ts';

const SECRET = 'whsec-test-0123456789abcdef';

interface Received {
  headers: IncomingHttpHeaders;
  body: Buffer;
  doc: any;
  answered: number;
}

/** A webhook receiver on 127.0.0.1: records every POST and answers with the next status of `answers` (then 200). */
class Receiver {
  readonly received: Received[] = [];
  readonly #answers: number[];
  server: Server | undefined;
  port = 0;

  constructor(answers: number[] = []) {
    this.#answers = [...answers];
  }

  async listen(t: Teardown, port = 0): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const answered = this.#answers.shift() ?? 200;
        this.received.push({ headers: req.headers, body, doc: JSON.parse(body.toString('utf8')), answered });
        res.writeHead(answered, { 'Content-Type': 'text/plain' });
        res.end(answered === 200 ? 'ok' : 'not now');
      });
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    defer(t, () => this.close());
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/gc?k=v`;
  }

  /** Deliveries answered 2xx, by CloudEvent id. */
  delivered(): string[] {
    return this.received.filter((r) => r.answered === 200).map((r) => r.doc.id);
  }
}

async function secretFile(t: Teardown, mode = 0o600, secret = SECRET): Promise<string> {
  const file = join(await makeTempDir(t, 'hs-gc-whsec-'), 'webhook-secret');
  await writeFile(file, `${secret}\n`);
  await chmod(file, mode);
  return file;
}

const fastDelivery = { initialBackoffMs: 200, maxBackoffSeconds: 1, timeoutSeconds: 5 };

async function newGroup(gc: GroundControl, name: string): Promise<void> {
  const r = await gc.api('POST', '/api/v1/groups', { name, images: [{ repository: 'library/alpine', tags: ['3.20'] }] });
  assert.equal(r.status, 201, JSON.stringify(r.body));
}

test('webhook: each event arrives as a signed CloudEvent; a wrong secret fails verification', async (t) => {
  const rx = new Receiver();
  await rx.listen(t);
  const gc = await startGroundControl(t, { config: { events: { webhooks: [{ url: rx.url, secretFile: await secretFile(t) }], delivery: fastDelivery } } });
  await newGroup(gc, 'web');
  const reg = await addAndRegister(gc, 'edge-wh');
  const sat = await connectSatellite(t, gc.mqttUrl as string, reg);
  sat.publish(`hs/v1/satellites/${reg.satelliteId}/presence`, JSON.stringify({ type: 'presence', satelliteId: reg.satelliteId, online: true, at: new Date().toISOString() }), { qos: 1 });

  const online = await eventually(async () => rx.received.find((r) => r.doc.type === 'io.goharbor.satellite.online'), 15_000, 'the online event');
  const log = (await gc.api('GET', '/api/v1/events?limit=1000')).body.events as Array<{ seq: number; action: string; satelliteId: string | null }>;
  await eventually(async () => rx.received.length >= log.length, 10_000, 'every event delivered');

  // Every line of the log, in order, each once.
  assert.deepEqual(rx.received.map((r) => r.doc.id), log.map((e) => String(e.seq)).reverse());
  const first = rx.received[0] as Received;
  assert.match(first.headers['content-type'] ?? '', /^application\/cloudevents\+json/);
  assert.equal(first.doc.specversion, '1.0');
  assert.equal(first.doc.type, 'io.goharbor.satellite.audit');
  assert.match(first.doc.source, /^urn:groundcontrol:/);
  assert.equal(first.doc.data.action, 'POST /api/v1/groups');
  assert.match(first.doc.data.actor, /admin token/);
  assert.ok(!Number.isNaN(Date.parse(first.doc.time)));
  assert.equal(online.doc.subject, reg.satelliteId);
  assert.equal(online.doc.data.action, 'satellite.online');

  for (const r of rx.received) assert.equal(verifySignature(SECRET, r.body, r.headers), undefined);
  // The receiver's checks refuse a wrong secret, a changed body and a replay outside the window.
  assert.equal(verifySignature('not-the-secret-0123456789', first.body, first.headers), 'signature mismatch');
  assert.equal(verifySignature(SECRET, Buffer.concat([first.body, Buffer.from(' ')]), first.headers), 'signature mismatch');
  assert.equal(verifySignature(SECRET, first.body, first.headers, { nowMs: Date.now() + 3600_000 }), 'timestamp too old or too new');
  assert.match(first.headers['x-satellite-signature'] as string, /^sha256=[0-9a-f]{64}$/);

  // The secret is never logged; the URL's path and query (which may carry a token) neither.
  assert.doesNotMatch(gc.logs(), new RegExp(SECRET));
  assert.doesNotMatch(gc.logs(), /hooks\/gc/);

  const metrics = await fetch(`${gc.url}/api/v1/metrics`, { headers: { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` } }).then((r) => r.text());
  assert.match(metrics, new RegExp(`groundcontrol_webhook_deliveries_total\\{webhook="[0-9a-f]{16}",origin="http://127.0.0.1:${rx.port}",result="delivered"\\} ${rx.received.length}`));
  assert.match(metrics, /groundcontrol_webhook_queue_depth\{webhook="[0-9a-f]{16}",origin="[^"]+"\} 0/);
});

test('webhook: a receiver answering 500 gets the event again, delivered exactly once; types filter', async (t) => {
  const rx = new Receiver([500]);
  await rx.listen(t);
  const gc = await startGroundControl(t, { config: { events: { webhooks: [{ url: rx.url, secretFile: await secretFile(t), types: ['audit'] }], delivery: fastDelivery } } });
  await newGroup(gc, 'retry');
  await eventually(async () => rx.delivered().length === 1, 15_000, 'the retried delivery');
  assert.equal(rx.received.length, 2);
  const [failed, ok] = rx.received as [Received, Received];
  assert.equal(failed.answered, 500);
  assert.equal(ok.answered, 200);
  assert.equal(failed.doc.id, ok.doc.id);
  assert.deepEqual(failed.doc, ok.doc);
  // Signed afresh for the retry, and both verify.
  assert.equal(verifySignature(SECRET, ok.body, ok.headers), undefined);
  await gc.waitForLog(/"reason":"HTTP 500","msg":"webhook delivery failed: retrying"/);

  // Another event follows in order, once; nothing is sent again.
  await newGroup(gc, 'second');
  await eventually(async () => rx.delivered().length === 2, 15_000, 'the second event');
  await new Promise((r) => setTimeout(r, 1500));
  assert.deepEqual(rx.received.map((r) => r.answered), [500, 200, 200]);
  assert.equal(new Set(rx.delivered()).size, 2);
  assert.ok(Number(rx.delivered()[1]) > Number(rx.delivered()[0]));
  assert.ok(rx.received.every((r) => r.doc.type === 'io.goharbor.satellite.audit'));
});

test('webhook: events queued while the receiver is down survive a Ground Control restart and are delivered in order', async (t) => {
  const rx = new Receiver();
  await rx.listen(t);
  const port = rx.port;
  await rx.close(); // down: connections are refused
  const config = { events: { webhooks: [{ url: `http://127.0.0.1:${port}/hook`, secretFile: await secretFile(t) }], delivery: fastDelivery } };
  const gc = await startGroundControl(t, { config });
  for (const name of ['one', 'two', 'three']) await newGroup(gc, name);
  await gc.waitForLog(/ECONNREFUSED[^"]*","msg":"webhook delivery failed: retrying"/, 15_000);
  const seqs = ((await gc.api('GET', '/api/v1/events?type=audit')).body.events as Array<{ seq: number }>).map((e) => String(e.seq)).reverse();
  assert.equal(seqs.length, 3);
  assert.equal((await gc.stop()).code, 0);

  await rx.listen(t, port);
  const again = await startGroundControl(t, { config, dataDir: gc.dataDir });
  await eventually(async () => rx.delivered().length >= 3, 20_000, 'the queued events after the restart');
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(rx.delivered(), seqs);
  for (const r of rx.received) assert.equal(verifySignature(SECRET, r.body, r.headers), undefined);
  await again.stop();
});

test('webhook: a secret file others can read, or a URL that is not http(s), stops the start-up with exit 78', async (t) => {
  const open = await spawnGroundControl(t, { config: { events: { webhooks: [{ url: 'http://127.0.0.1:9/x', secretFile: await secretFile(t, 0o644) }] } } });
  const e1 = await open.proc.exited;
  assert.equal(e1.code, 78, open.logs());
  assert.match(open.logs(), /events\.webhooks\[0\]\.secretFile: cannot use .*webhook-secret: mode 644/);
  assert.doesNotMatch(open.logs(), new RegExp(SECRET));

  const ftp = await spawnGroundControl(t, { config: { events: { webhooks: [{ url: 'ftp://127.0.0.1/x', secretFile: await secretFile(t) }] } } });
  assert.equal((await ftp.proc.exited).code, 78, ftp.logs());
  assert.match(ftp.logs(), /\/events\/webhooks\/0\/url/);
});

test('webhook queue: bounded, the oldest undelivered lines dropped and counted; types skip others', async (t) => {
  const db = openGcDb(await makeTempDir(t, 'hs-gc-whq-'));
  defer(t, () => db.root.close());
  await db.root.transaction(() => {
    for (let i = 1; i <= 10; i++) appendEvent(db, 100, new Date().toISOString(), { kind: i % 2 ? 'audit' : 'satellite', action: i % 2 ? 'POST /api/v1/groups' : 'satellite.online', satelliteId: 's', message: `line ${i}` });
  });
  assert.deepEqual(pick(nextLine(db, 0, undefined, 100)), { seq: 1, skipTo: 0, dropped: 0 });
  // 10 queued, 3 allowed: 7 dropped, the next is line 8.
  assert.deepEqual(pick(nextLine(db, 0, undefined, 3)), { seq: 8, skipTo: 7, dropped: 7 });
  // Only "online" (even lines): 5 queued, 2 allowed -> lines 2, 4, 6 dropped, next is 8.
  assert.deepEqual(pick(nextLine(db, 0, ['online'], 2)), { seq: 8, skipTo: 7, dropped: 3 });
  assert.deepEqual(pick(nextLine(db, 8, ['online'], 100)), { seq: 10, skipTo: 9, dropped: 0 });
  assert.deepEqual(pick(nextLine(db, 10, ['online'], 100)), { seq: undefined, skipTo: 10, dropped: 0 });
  assert.deepEqual(pick(nextLine(db, 25, undefined, 100)), { seq: undefined, skipTo: 10, dropped: 0 });
  // Lines trimmed by the log's retention before delivery count as dropped.
  await db.root.transaction(() => {
    for (let i = 1; i <= 5; i++) db.events.remove(i);
  });
  assert.deepEqual(pick(nextLine(db, 2, undefined, 100)), { seq: 6, skipTo: 5, dropped: 3 });
});

function pick(n: ReturnType<typeof nextLine>): { seq: number | undefined; skipTo: number; dropped: number } {
  return { seq: n.event?.seq, skipTo: n.skipTo, dropped: n.dropped };
}

test('webhook: a receiver that hangs times out, a redirect is not followed, a huge answer is not read', async (t) => {
  const elsewhere = new Receiver();
  await elsewhere.listen(t);
  const requests: Array<{ id: string; at: number }> = [];
  let bigAnswerWritten = -1;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ id: JSON.parse(Buffer.concat(chunks).toString('utf8')).id, at: Date.now() });
      if (requests.length === 1) return; // never answers
      if (requests.length === 2) {
        res.writeHead(307, { Location: elsewhere.url });
        res.end();
        return;
      }
      // 200 with 32 MiB of body: Ground Control reads 4 KiB and hangs up.
      res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
      const chunk = Buffer.alloc(1 << 20);
      let sent = 0;
      const pump = () => {
        while (sent < 32 && res.write(chunk)) sent++;
        if (sent < 32) res.once('drain', () => { sent++; pump(); });
        else res.end();
      };
      res.on('close', () => { bigAnswerWritten = req.socket.bytesWritten; });
      pump();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  defer(t, () => { server.closeAllConnections(); server.close(); });
  const port = (server.address() as AddressInfo).port;
  // debug: retries after the first are logged at debug level.
  const gc = await startGroundControl(t, { config: { log: { level: 'debug' }, events: { webhooks: [{ url: `http://127.0.0.1:${port}/h`, secretFile: await secretFile(t) }], delivery: { ...fastDelivery, timeoutSeconds: 1 } } } });
  await newGroup(gc, 'slow');
  await eventually(async () => requests.length >= 3, 20_000, 'three attempts');
  await gc.waitForLog(/"reason":"no answer within 1 s","msg":"webhook delivery failed: retrying"/);
  await gc.waitForLog(/"reason":"HTTP 307","msg":"webhook delivery failed: retrying"/);
  await eventually(async () => bigAnswerWritten >= 0, 10_000, 'the big answer cut off');
  assert.ok(bigAnswerWritten < 16 * (1 << 20), `wrote ${bigAnswerWritten} bytes before Ground Control hung up`);
  assert.equal(new Set(requests.map((r) => r.id)).size, 1);
  assert.ok((requests[1] as { at: number }).at - (requests[0] as { at: number }).at >= 900, 'the first attempt waited for its timeout');
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(elsewhere.received.length, 0, 'the redirect was not followed');
  assert.equal(requests.length, 3, 'delivered on the third attempt, not sent again');
});

test('webhook config: defaults, and every bad key named', async (t) => {
  const dir = await makeTempDir(t, 'hs-gc-whcfg-');
  const load = async (events: unknown) => {
    const file = join(dir, 'gc.json');
    await writeFile(file, JSON.stringify({ events }));
    return loadGroundControlConfig({ file, env: {} });
  };
  const ok = await load({ webhooks: [{ url: 'https://alerts.example.internal/hook', secretFile: 'secret', types: ['offline', 'image.*'] }] });
  assert.equal(ok.events.webhooks[0]?.secretFile, join(dir, 'secret'));
  assert.deepEqual(ok.events.delivery, { timeoutSeconds: 10, initialBackoffMs: 1000, maxBackoffSeconds: 600, maxAttempts: 200, maxAgeSeconds: 86400, maxQueued: 10000 });
  assert.deepEqual((await load(undefined)).events.webhooks, []);
  await assert.rejects(
    load({
      webhooks: [
        { url: 'http://user:pw@127.0.0.1/x', secretFile: 's' },
        { url: 'http://127.0.0.1/x', secretFile: 's', types: ['Bad Type'] },
        { url: 'http://127.0.0.1/y' },
      ],
      delivery: { maxAttempts: 0 },
    }),
    (err: Error) => {
      for (const key of ['/events/webhooks/0/url', '/events/webhooks/1/types/0', '/events/webhooks/2: must have required property \'secretFile\'', '/events/delivery/maxAttempts']) assert.ok(err.message.includes(key), `${key} in ${err.message}`);
      assert.doesNotMatch(err.message, /pw@/);
      return true;
    },
  );
  await assert.rejects(load({ webhooks: [{ url: 'http://127.0.0.1/x', secretFile: 's' }, { url: 'http://127.0.0.1/x', secretFile: 't' }] }), /\/events\/webhooks\/1\/url: the same URL as \/events\/webhooks\/0\/url/);
});

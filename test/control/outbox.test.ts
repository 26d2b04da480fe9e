import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Outbox, type OutboxItem } from '../../src/control/outbox.ts';
import { Store } from '../../src/store/index.ts';
import { defer } from '../helpers/cleanup.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { startBroker } from './broker.ts';
import { assertAllValid, connectGc, emptyDesired, field, openSatellite, testLog, until, type Received } from './helpers.ts';

const token = (m: Received): string => (m.channel === 'state' ? `state:${field<number>(m, 'seq')}` : `${m.channel}:${field<string>(m, 'message')}`);

test('outbox: reports and events written while the broker is down survive a restart and arrive in order, once', async (t) => {
  const ID = 'sat-outbox';
  const broker = await startBroker(t, { persistence: true });
  const gc = await connectGc(t, broker.url);
  await gc.publishDesired(ID, emptyDesired(1));
  const dataDir = await makeTempDir(t);
  const config = { satelliteId: ID, mqtt: { url: broker.url } };

  const first = await openSatellite(t, { dataDir, config });
  await gc.waitFor('report after the first run', (m) => m.channel === 'state' && field(m, 'appliedGeneration') === 1);
  await sleep(300); // let the debounced reports go out
  await until('outbox empty', () => first.control.status().outbox.pending === 0);
  const before = gc.received.length;

  await broker.stop();
  await until('offline', () => !first.control.status().connection.connected);
  const written: string[] = [];
  written.push(`state:${await first.control.report()}`);
  await first.control.publishEvent('info', 'TEST_EVENT', 'offline-1');
  written.push('events:offline-1');
  written.push(`state:${await first.control.report()}`);
  await first.control.publishEvent('warn', 'TEST_EVENT', 'offline-2');
  written.push('events:offline-2');
  written.push(`state:${await first.control.report()}`);
  await first.close();

  // Restart while the broker is still down: the queue is on disk.
  const opened = Date.now();
  const second = await openSatellite(t, { dataDir, config });
  assert.ok(second.control.status().outbox.pending >= 5, JSON.stringify(second.control.status().outbox));
  await until('the restarted engine ran', () => Date.parse(second.sync.status().lastRun?.startedAt ?? '0') >= opened - 5 && !second.sync.status().running);
  await sleep(200);
  written.push(`state:${await second.control.report()}`);
  await second.control.publishEvent('error', 'TEST_EVENT', 'offline-3');
  written.push('events:offline-3');
  const pending = second.control.status().outbox.pending;

  await broker.start();
  await gc.waitFor('the last event written', (m) => m.channel === 'events' && field(m, 'message') === 'offline-3', 15_000);
  await until('outbox flushed', () => second.control.status().outbox.pending === 0);
  await sleep(200);

  const after = gc.received.slice(before).filter((m) => m.satelliteId === ID && (m.channel === 'state' || m.channel === 'events'));
  const tokens = after.map(token);
  // Everything written is delivered exactly once, in the order written.
  for (const w of written) assert.equal(tokens.filter((x) => x === w).length, 1, `${w} delivered once: ${tokens.join(' ')}`);
  const positions = written.map((w) => tokens.indexOf(w));
  assert.deepEqual(positions, [...positions].sort((a, b) => a - b), `in order: ${tokens.join(' ')}`);
  // State seqs only go up, across the restart too.
  const seqs = after.filter((m) => m.channel === 'state').map((m) => field<number>(m, 'seq'));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  assert.equal(new Set(seqs).size, seqs.length);
  assert.ok(tokens.length >= pending, `${pending} queued, ${tokens.length} delivered`);
  assertAllValid(gc);
});

test('outbox bounds: older unsent reports are superseded, the oldest messages dropped, counted and reported', async (t) => {
  const dataDir = await makeTempDir(t);
  const log = testLog('outbox');
  let store = await Store.open({ dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, log);
  defer(t, () => store.close());
  let connected = false;
  const published: OutboxItem[] = [];
  const make = () =>
    new Outbox({
      store,
      log,
      maxEntries: 6,
      maxReports: 2,
      publish: async (item) => {
        published.push(item);
      },
      isConnected: () => connected,
      overflowEvent: (count) => ({ kind: 'event', topic: 'overflow', payload: String(count), retain: false }),
    });
  const item = (kind: OutboxItem['kind'], n: number): OutboxItem => ({ kind, topic: kind, payload: `${kind}-${n}`, retain: kind === 'state' });

  let outbox = make();
  for (let i = 1; i <= 4; i++) await outbox.enqueue(() => [item('state', i)]);
  assert.deepEqual(outbox.stats(), { pending: 2, pendingReports: 2, sent: 0, dropped: 0, coalesced: 2, lastReportSentAt: null });
  for (let i = 1; i <= 6; i++) await outbox.enqueue(() => [item('result', i)]);
  // Room was made by superseding the two queued reports; no result or event was dropped yet.
  assert.deepEqual(outbox.stats(), { pending: 6, pendingReports: 0, sent: 0, dropped: 0, coalesced: 4, lastReportSentAt: null });
  await outbox.enqueue(() => [item('event', 1), item('event', 2)]);
  assert.equal(outbox.stats().dropped, 2);
  await outbox.close();

  // The queue and the drop count survive a restart.
  await store.close();
  store = await Store.open({ dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, log);
  outbox = make();
  assert.equal(outbox.stats().pending, 6);
  assert.equal(outbox.stats().dropped, 2);
  connected = true;
  outbox.connected();
  assert.ok(await outbox.drain(5000));
  assert.deepEqual(
    published.map((p) => p.payload),
    ['result-3', 'result-4', 'result-5', 'result-6', 'event-1', 'event-2', '2'],
  );
  assert.equal(outbox.stats().dropped, 0);
  await outbox.close();
});

test('outbox: items enqueued concurrently with a running flush are all published, in order', async (t) => {
  const dataDir = await makeTempDir(t);
  const log = testLog('outbox');
  const store = await Store.open({ dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, log);
  defer(t, () => store.close());
  const published: string[] = [];
  const outbox = new Outbox({
    store,
    log,
    maxEntries: 1000,
    maxReports: 1000,
    publish: async (item) => {
      await sleep(Math.random() * 2);
      published.push(item.payload);
    },
    isConnected: () => true,
    overflowEvent: (count) => ({ kind: 'event', topic: 'overflow', payload: String(count), retain: false }),
  });
  const expected: string[] = [];
  const writes: Array<Promise<void>> = [];
  for (let i = 0; i < 200; i++) {
    const payload = `r-${i}`;
    expected.push(payload);
    writes.push(outbox.enqueue(() => [{ kind: 'result', topic: 'results', payload, retain: false }]));
    // Mostly one item at a time, so new items land just as the pump looks for the next one.
    if (i % 3 !== 0) await sleep(Math.random() * 3);
  }
  await Promise.all(writes);
  await until('all published', () => published.length === 200, 10_000, () => outbox.stats());
  assert.deepEqual(published, expected);
  assert.equal(outbox.stats().pending, 0);
  await outbox.close();
});

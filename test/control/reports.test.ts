import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildStateMessage, fitPayload } from '../../src/control/reports.ts';
import { MAX_PAYLOAD_BYTES, decodeMessage, encodeMessage, topic } from '../../src/protocol/index.ts';
import type { SyncStatus } from '../../src/sync/index.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { startBroker } from './broker.ts';
import { assertAllValid, connectGc, field, openSatellite, until } from './helpers.ts';

function status(images: SyncStatus['images']): SyncStatus {
  return {
    desiredGeneration: 4,
    appliedGeneration: 3,
    appliedFrom: 'sync',
    appliedAt: null,
    running: false,
    upstream: { url: 'http://127.0.0.1:9', reachable: false, lastError: 'x'.repeat(5000) },
    paused: null,
    nextRunAt: null,
    lastRun: {
      generation: 4,
      startedAt: '2025-01-01T00:00:00.000Z',
      finishedAt: '2025-01-01T00:00:01.000Z',
      result: 'partial',
      bytesFromUpstream: 10,
      blobsFetched: 1,
      blobsResumed: 0,
      untagged: 0,
      manifestsDeleted: 0,
      gcBytesFreed: 0,
      errors: [{ code: 'UPSTREAM_UNREACHABLE', message: 'down' }],
    },
    images,
    meters: { hour: { period: 'h', bytes: 0 }, day: { period: 'd', bytes: 0 }, month: { period: 'm', bytes: 0 } },
    partials: [],
    disk: { condition: 'ok', freeBytes: 1e9, totalBytes: 2e9, minFreeBytes: 0, reservedBytes: 0, checkedAt: '2025-01-01T00:00:00.000Z', held: null },
  } as SyncStatus;
}

test('state report: images, generations, disk and upstream mapped into a message the protocol accepts', () => {
  const m = buildStateMessage({
    satelliteId: 'sat-r',
    seq: 7,
    version: '1.2.3',
    received: 5,
    disk: { blobs: 3, bytes: 1234 },
    sync: status([
      { repository: 'library/nginx', reference: '1.27', status: 'ok', digest: `sha256:${'a'.repeat(64)}`, updatedAt: 'x', lastOkAt: 'x' },
      { repository: 'app/api', reference: 'v2', status: 'failed', code: 'MANIFEST_UNKNOWN', reason: 'not found', updatedAt: 'x' },
    ]),
  });
  assert.equal(m.desiredGeneration, 5, 'the newest received generation is acknowledged');
  assert.equal(m.appliedGeneration, 3);
  assert.deepEqual(m.images, [
    { repository: 'library/nginx', reference: '1.27', status: 'ok', digest: `sha256:${'a'.repeat(64)}` },
    { repository: 'app/api', reference: 'v2', status: 'failed', code: 'MANIFEST_UNKNOWN', reason: 'not found' },
  ]);
  assert.deepEqual(m.lastSync, { result: 'partial', finishedAt: '2025-01-01T00:00:01.000Z', bytesFromUpstream: 10, errors: 1 });
  assert.equal(m.upstream.reachable, false);
  assert.ok((m.upstream.lastError ?? '').length <= 4000);
  decodeMessage(topic('sat-r', 'state'), encodeMessage(m));
});

test('state report: DISK_FULL with its numbers and a read-only disk reach Ground Control in a valid message', () => {
  const m = buildStateMessage({
    satelliteId: 'sat-r',
    seq: 8,
    version: '1.2.3',
    received: 4,
    disk: { blobs: 2, bytes: 50_000_000, condition: 'read-only', freeBytes: 10_000_000, minFreeBytes: 2_097_152 },
    sync: status([
      { repository: 'df/c', reference: 'v1', status: 'failed', code: 'DISK_FULL', reason: 'not enough disk space', bytesNeeded: 25_183_697, bytesAvailable: 8_228_864, updatedAt: 'x' },
    ]),
  });
  assert.deepEqual(m.images[0], { repository: 'df/c', reference: 'v1', status: 'failed', code: 'DISK_FULL', reason: 'not enough disk space', bytesNeeded: 25_183_697, bytesAvailable: 8_228_864 });
  assert.equal(m.disk.condition, 'read-only');
  const decoded = decodeMessage(topic('sat-r', 'state'), encodeMessage(m)).message as typeof m;
  assert.equal(decoded.images[0]!.bytesNeeded, 25_183_697);
  assert.equal(decoded.disk.freeBytes, 10_000_000);
});

test('state report larger than the payload limit: reasons dropped, images needing attention kept first', () => {
  const images: SyncStatus['images'] = [];
  for (let i = 0; i < 10000; i++) {
    images.push({ repository: `team-${i}/service-with-a-long-name`, reference: `v${i}`, status: i % 100 === 0 ? 'failed' : 'ok', digest: `sha256:${String(i).padStart(64, '0')}`, reason: i % 100 === 0 ? 'r'.repeat(1000) : undefined, updatedAt: 'x' } as SyncStatus['images'][number]);
  }
  const big = buildStateMessage({ satelliteId: 'sat-r', seq: 1, version: '1', received: null, disk: { blobs: 0, bytes: 0 }, sync: status(images) });
  assert.ok(encodeMessage(big).length > MAX_PAYLOAD_BYTES);
  const fitted = fitPayload(big);
  assert.ok(encodeMessage(fitted).length <= MAX_PAYLOAD_BYTES);
  assert.ok(fitted.images.length > 1000);
  assert.ok(fitted.images.slice(0, 100).every((img) => img.status === 'failed' && img.reason === undefined));
  decodeMessage(topic('sat-r', 'state'), encodeMessage(fitted));
});

test('state reports are also sent every reportIntervalSeconds', async (t) => {
  const broker = await startBroker(t);
  const gc = await connectGc(t, broker.url);
  const sat = await openSatellite(t, { dataDir: await makeTempDir(t), config: { satelliteId: 'sat-periodic', mqtt: { url: broker.url }, reportIntervalSeconds: 1 } });
  await gc.waitFor('first report', (m) => m.channel === 'state' && m.satelliteId === 'sat-periodic');
  const n = gc.from('sat-periodic', 'state').length;
  await until('two more periodic reports', () => gc.from('sat-periodic', 'state').length >= n + 2, 5000);
  const seqs = gc.from('sat-periodic', 'state').map((m) => field<number>(m, 'seq'));
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  assert.ok(sat.control.status().outbox.sent >= n + 2);
  assertAllValid(gc);
});

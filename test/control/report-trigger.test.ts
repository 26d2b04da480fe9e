import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildStateMessage, fitPayload } from '../../src/control/reports.ts';
import { reportReason, summarize, type TriggerOptions } from '../../src/control/report-trigger.ts';
import { readBoardModel } from '../../src/control/report-inputs.ts';
import { MAX_PAYLOAD_BYTES, MAX_STRAY_PULLS, decodeMessage, encodeMessage, topic, type StateMessage } from '../../src/protocol/index.ts';
import type { SyncStatus } from '../../src/sync/index.ts';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir } from '../helpers/tmp.ts';

const OPTS: TriggerOptions = { progressStepPercent: 10, progressStepBytes: 100 * 1024 * 1024, diskStepPercent: 5 };
const GiB = 1024 ** 3;

function message(over: Partial<StateMessage> = {}): StateMessage {
  return {
    type: 'state',
    satelliteId: 'sat-t',
    seq: 1,
    at: '2026-01-01T00:00:00.000Z',
    version: '1',
    desiredGeneration: 3,
    appliedGeneration: 3,
    images: [
      { repository: 'app/web', reference: 'v1', status: 'ok' },
      { repository: 'app/db', reference: '16', status: 'pending', bytesDone: 0, bytesTotal: 1000 * 1024 * 1024 },
    ],
    disk: { blobs: 1, bytes: 1, freeBytes: 50 * GiB, totalBytes: 100 * GiB, condition: 'ok' },
    lastSync: { result: 'ok', finishedAt: '2026-01-01T00:00:00.000Z', bytesFromUpstream: 0, errors: 0 },
    upstream: { reachable: true, lastError: null },
    ...over,
  };
}

const reason = (before: StateMessage, after: StateMessage, opts = OPTS) => reportReason(summarize(before), summarize(after), opts);
const withDb = (m: StateMessage, img: Partial<StateMessage['images'][number]>): StateMessage => ({ ...m, images: [m.images[0]!, { ...m.images[1]!, ...img }] });

test('report trigger: the same state, moving counters, a small progress or disk wobble are no news', () => {
  const m = message();
  assert.equal(reportReason(undefined, summarize(m), OPTS), 'first report');
  assert.equal(reason(m, message({ seq: 9, at: 'later', traffic: { bytesFromUpstream: 5, bytesServed: 9, bytesFromPeers: 0, bytesToPeers: 0 }, process: { rssBytes: 1, uptimeSeconds: 99, arch: 'x64' } })), undefined);
  assert.equal(reason(m, withDb(m, { bytesDone: 50 * 1024 * 1024 })), undefined, '5 % of the image is under the 10 % step');
  assert.equal(reason(m, message({ disk: { ...m.disk, freeBytes: 50 * GiB - 4 * GiB } })), undefined, '4 % of the disk is under the 5 % step');
  assert.equal(reason(m, message({ lastSync: { ...m.lastSync!, finishedAt: 'later', bytesFromUpstream: 7 } })), undefined, 'another run with the same result');
});

test('report trigger: status, code, generations, reachability, disk and progress steps are news', () => {
  const m = message();
  assert.equal(reason(m, withDb(m, { status: 'failed', code: 'UPSTREAM_UNREACHABLE' })), 'image status');
  const failed = withDb(m, { status: 'failed', code: 'A' });
  assert.equal(reason(failed, withDb(m, { status: 'failed', code: 'B' })), 'image status', 'a new failure code');
  assert.equal(reason(m, message({ images: [m.images[0]!] })), 'image status', 'an image left');
  assert.equal(reason(m, message({ appliedGeneration: 4 })), 'applied generation');
  assert.equal(reason(m, message({ desiredGeneration: 4 })), 'desired generation');
  assert.equal(reason(m, message({ upstream: { reachable: false, lastError: 'x' } })), 'upstream reachability');
  assert.equal(reason(m, message({ disk: { ...m.disk, condition: 'low' } })), 'disk condition');
  assert.equal(reason(m, message({ disk: { ...m.disk, freeBytes: 44 * GiB } })), 'disk free space', '6 % of the disk');
  assert.equal(reason(m, message({ lastSync: { ...m.lastSync!, result: 'partial', errors: 1 } })), 'sync result');
  assert.equal(reason(m, withDb(m, { bytesDone: 100 * 1024 * 1024 })), 'download progress', '10 % of the image');
  // A 10 GiB image: 10 % is 1 GiB, but the byte step (100 MiB) comes first.
  const big = withDb(m, { bytesTotal: 10 * GiB, bytesDone: 0 });
  assert.equal(reason(big, withDb(m, { bytesTotal: 10 * GiB, bytesDone: 100 * 1024 * 1024 })), 'download progress');
  assert.equal(reason(big, withDb(m, { bytesTotal: 10 * GiB, bytesDone: 100 * 1024 * 1024 }), { ...OPTS, progressStepBytes: 0 }), undefined);
  assert.equal(reason(m, withDb(m, { bytesDone: 900 * 1024 * 1024 }), { ...OPTS, progressStepPercent: 0, progressStepBytes: 0 }), undefined, 'progress reports off');
});

function status(images: SyncStatus['images']): SyncStatus {
  return {
    desiredGeneration: 2,
    appliedGeneration: 1,
    appliedFrom: 'sync',
    appliedAt: null,
    running: true,
    upstream: { url: 'http://127.0.0.1:9', reachable: true, lastError: null },
    paused: null,
    nextRunAt: null,
    lastRun: null,
    images,
    meters: { hour: { period: 'h', bytes: 0 }, day: { period: 'd', bytes: 0 }, month: { period: 'm', bytes: 0 } },
    partials: [],
    disk: { condition: 'ok', freeBytes: 1e9, totalBytes: 2e9, minFreeBytes: 0, reservedBytes: 0, checkedAt: 'x', held: null },
  } as SyncStatus;
}

test('state report: pending bytes, downloads summed, counters, process, stray pulls minus the desired state, all valid', () => {
  const digest = `sha256:${'b'.repeat(64)}`;
  const m = buildStateMessage({
    satelliteId: 'sat-r',
    seq: 1,
    version: '1',
    received: null,
    disk: { blobs: 1, bytes: 10, freeBytes: 5, totalBytes: 100 },
    sync: status([
      { repository: 'app/web', reference: 'v1', status: 'ok', updatedAt: 'x' },
      { repository: 'app/db', reference: '16', status: 'pending', bytesDone: 300, bytesTotal: 1000, updatedAt: 'x' },
      { repository: 'app/cache', reference: '7', status: 'pending', bytesDone: 50, bytesTotal: 100, updatedAt: 'x' },
    ]),
    traffic: { bytesFromUpstream: 1, bytesServed: 2, bytesFromPeers: 3, bytesToPeers: 4 },
    proxy: { hits: 1, misses: 2, bytesFromUpstream: 3, bytesServedFromCache: 4 },
    process: { rssBytes: 1, uptimeSeconds: 2, arch: 'arm64', board: 'Raspberry Pi 4 Model B Rev 1.4' },
    strayPulls: [
      { repository: 'app/web', reference: 'v1', pulls: 50, notFound: 0 },
      { repository: 'app/web', reference: digest, pulls: 40, notFound: 0 },
      { repository: 'tools/debug', reference: 'latest', pulls: 3, notFound: 1 },
      ...Array.from({ length: 30 }, (_, i) => ({ repository: `x/y${i}`, reference: 'v', pulls: 1, notFound: 0 })),
    ],
  });
  assert.deepEqual(m.images[1], { repository: 'app/db', reference: '16', status: 'pending', bytesDone: 300, bytesTotal: 1000 });
  assert.equal(m.images[0]!.bytesTotal, undefined, 'only pending images carry bytes');
  assert.deepEqual(m.download, { bytesDone: 350, bytesTotal: 1100, bytesRemaining: 750 });
  assert.equal(m.disk.totalBytes, 100);
  assert.deepEqual(m.strayPulls?.[0], { repository: 'tools/debug', reference: 'latest', pulls: 3, notFound: 1 }, 'desired tag and digests of a desired repository are not stray');
  assert.equal(m.strayPulls?.length, MAX_STRAY_PULLS);
  assert.equal(m.process?.board, 'Raspberry Pi 4 Model B Rev 1.4');
  decodeMessage(topic('sat-r', 'state'), encodeMessage(m));
  const idle = buildStateMessage({ satelliteId: 'sat-r', seq: 1, version: '1', received: null, disk: { blobs: 0, bytes: 0 }, sync: status([{ repository: 'a/b', reference: 'c', status: 'ok', updatedAt: 'x' }]) });
  assert.equal(idle.download, undefined, 'nothing downloading: no download section');
  assert.equal(idle.strayPulls, undefined);
});

test('state report over the payload limit drops the stray pulls first', () => {
  const images: SyncStatus['images'] = [];
  for (let i = 0; i < 8000; i++) images.push({ repository: `team-${i}/service-with-a-long-name`, reference: `v${i}`, status: 'ok', digest: `sha256:${String(i).padStart(64, '0')}`, updatedAt: 'x' });
  const strayPulls = Array.from({ length: 20 }, (_, i) => ({ repository: `stray/${'n'.repeat(200)}${i}`, reference: 'latest', pulls: 1, notFound: 0 }));
  const full = buildStateMessage({ satelliteId: 'sat-r', seq: 1, version: '1', received: null, disk: { blobs: 0, bytes: 0 }, sync: status(images), strayPulls });
  const limit = MAX_PAYLOAD_BYTES - 64;
  // The most images that fit without the stray pulls: with them, the report is over the limit.
  let lo = 1;
  let hi = full.images.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (encodeMessage({ ...full, strayPulls: undefined, images: full.images.slice(0, mid) }).length <= limit) lo = mid;
    else hi = mid - 1;
  }
  const m = { ...full, images: full.images.slice(0, lo) };
  assert.ok(encodeMessage(m).length > limit, 'fixture over the limit with its stray pulls');
  const fitted = fitPayload(m);
  assert.equal(fitted.strayPulls, undefined);
  assert.equal(fitted.images.length, lo, 'every image kept');
});

test('board model: read from the device tree file, NULs trimmed; absent file = no board', async (t) => {
  const dir = await makeTempDir(t);
  const model = join(dir, 'model');
  await writeFile(model, 'Raspberry Pi 4 Model B Rev 1.4\0');
  assert.equal(readBoardModel([join(dir, 'missing'), model]), 'Raspberry Pi 4 Model B Rev 1.4');
  assert.equal(readBoardModel([join(dir, 'missing')]), undefined);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUCKET_MS, HOUR_MS } from '../../src/groundcontrol/db/series.ts';
import { ingestMessage } from '../../src/groundcontrol/fleet/reports.ts';
import { createSatellite, deleteSatellite } from '../../src/groundcontrol/fleet/satellites.ts';
import { bucketTime, counterDeltas, seriesOf } from '../../src/groundcontrol/fleet/series.ts';
import { topic } from '../../src/protocol/index.ts';
import { testFleetContext } from '../helpers/fleet-context.ts';

const traffic = (up: number, served: number, peersIn = 0, peersOut = 0) => ({ bytesFromUpstream: up, bytesServed: served, bytesFromPeers: peersIn, bytesToPeers: peersOut });
const proxy = (saved: number) => ({ hits: 0, misses: 0, bytesFromUpstream: 0, bytesServedFromCache: saved });
const proc = (uptimeSeconds: number) => ({ rssBytes: 1, uptimeSeconds, arch: 'x64' });

test('counter deltas: differences between reports, restarts counted from zero, never negative', () => {
  const a = { traffic: traffic(100, 1000, 5, 7), proxy: proxy(50), process: proc(60) };
  // No previous report: no baseline, nothing counted.
  assert.deepEqual(counterDeltas(undefined, a), [0, 0, 0, 0, 0]);
  assert.deepEqual(counterDeltas(null, a), [0, 0, 0, 0, 0]);
  const b = { traffic: traffic(150, 1600, 5, 10), proxy: proxy(80), process: proc(120) };
  assert.deepEqual(counterDeltas(a, b), [50, 600, 30, 0, 3]);
  // Same counters: nothing moved.
  assert.deepEqual(counterDeltas(b, { ...b, process: proc(180) }), [0, 0, 0, 0, 0]);
  // The uptime went down: the process restarted, everything it counted since is new, even
  // counters that happen to be above the old values.
  const restarted = { traffic: traffic(400, 20, 0, 0), proxy: proxy(1), process: proc(30) };
  assert.deepEqual(counterDeltas(b, restarted), [400, 20, 1, 0, 0]);
  // A counter went down without an uptime (older satellite): also a restart.
  const noUptime = (t: ReturnType<typeof traffic>) => ({ traffic: t });
  assert.deepEqual(counterDeltas(noUptime(traffic(100, 100)), noUptime(traffic(120, 40))), [120, 40, 0, 0, 0]);
  // A report without traffic or proxy counters (older satellites) counts nothing for them.
  assert.deepEqual(counterDeltas({ traffic: traffic(1, 1) }, { traffic: traffic(2, 3), proxy: proxy(9) }), [1, 2, 0, 0, 0]);
  assert.deepEqual(counterDeltas(b, {}), [0, 0, 0, 0, 0]);
  for (const d of [counterDeltas(b, restarted), counterDeltas(restarted, b)]) assert.ok(d.every((v) => v >= 0), `never negative: ${d}`);
});

test('bucket time: the report\'s own time, never in the future, never before the detail window', () => {
  const now = Date.parse('2026-12-07T12:00:00Z');
  assert.equal(bucketTime('2026-12-07T11:07:00Z', now), Date.parse('2026-12-07T11:07:00Z'));
  assert.equal(bucketTime('2026-12-08T00:00:00Z', now), now);
  assert.equal(bucketTime('2026-12-01T00:00:00Z', now), now - 47 * HOUR_MS);
  assert.equal(bucketTime('not a time', now), now);
});

test('series in LMDB: buckets, rollover into hourly totals after 48 h, retention, deletion', async (t) => {
  let now = Date.parse('2026-12-07T10:00:00Z');
  const ctx = await testFleetContext(t, { now: () => new Date(now) });
  const { db } = ctx;
  const id = (await createSatellite(ctx, { name: 'edge' })).satellite.id;
  const other = (await createSatellite(ctx, { name: 'other' })).satellite.id;
  let seq = 0;
  const report = (sat: string, at: number, up: number, served: number, saved: number, uptime: number) =>
    ingestMessage(
      ctx,
      topic(sat, 'state'),
      Buffer.from(
        JSON.stringify({
          type: 'state', satelliteId: sat, seq: ++seq, at: new Date(at).toISOString(), version: '0.2.0', desiredGeneration: null, appliedGeneration: null,
          images: [], disk: { blobs: 0, bytes: 0 }, lastSync: null, upstream: { reachable: null, lastError: null },
          traffic: traffic(up, served), proxy: proxy(saved), process: proc(uptime),
        }),
      ),
    );
  const t0 = now;
  // First report: the baseline. Then one per minute for 12 minutes: 1000 B/min from upstream.
  await report(id, t0, 5000, 0, 0, 100);
  for (let m = 1; m <= 12; m++) {
    now = t0 + m * 60_000;
    await report(id, now, 5000 + m * 1000, m * 3000, m * 500, 100 + m * 60);
  }
  const day = seriesOf(db, id, '24h', now);
  assert.equal(day.bucketSeconds, 300);
  assert.equal(day.t.length, 288);
  assert.equal(day.t.at(-1), Math.floor(now / BUCKET_MS) * 300, 'the last bucket is the current one');
  const at = (ms: number) => day.t.indexOf(ms / 1000);
  // 10:00-10:05 holds minutes 1..4, 10:05 minutes 5..9, 10:10 minutes 10..12.
  assert.equal(day.values.bytesFromUpstream[at(t0)], 4000);
  assert.equal(day.values.bytesFromUpstream[at(t0 + BUCKET_MS)], 5000);
  assert.equal(day.values.bytesFromUpstream[at(t0 + 2 * BUCKET_MS)], 3000);
  assert.equal(day.values.bytesServed[at(t0 + BUCKET_MS)], 15000);
  assert.equal(day.values.bytesSavedByCache[at(t0 + 2 * BUCKET_MS)], 1500);
  assert.equal(day.values.bytesFromUpstream.reduce((a, b) => a + b, 0), 12_000, 'nothing counted twice, the baseline not at all');
  assert.equal(seriesOf(db, other, '24h', now).values.bytesFromUpstream.reduce((a, b) => a + b, 0), 0, 'another satellite has its own series');
  // One record per satellite and hour: a report rewrites it, it does not add rows.
  assert.equal([...db.series5m.getKeys({ start: [id, 0], end: [id, Number.MAX_SAFE_INTEGER] })].length, 1);

  // The satellite restarts (uptime 10 s): 700 bytes since then, counted once.
  now += 60_000;
  await report(id, now, 700, 0, 0, 10);
  assert.equal(seriesOf(db, id, '24h', now).values.bytesFromUpstream.reduce((a, b) => a + b, 0), 12_700);
  // A report replayed out of order (older seq) changes nothing.
  seq -= 5;
  await report(id, now, 99_999, 0, 0, 20);
  seq += 10;
  assert.equal(seriesOf(db, id, '24h', now).values.bytesFromUpstream.reduce((a, b) => a + b, 0), 12_700);

  // Two hours on: a new hour record. The 7-day view sums the hours.
  now = t0 + 2 * HOUR_MS;
  await report(id, now, 1700, 0, 0, 7200);
  const week = seriesOf(db, id, '7d', now);
  assert.equal(week.bucketSeconds, 3600);
  assert.equal(week.t.length, 168);
  assert.equal(week.values.bytesFromUpstream[week.t.indexOf(t0 / 1000)], 12_700);
  assert.equal(week.values.bytesFromUpstream[week.t.indexOf((t0 + 2 * HOUR_MS) / 1000)], 1000);

  // 49 hours later the first hours leave the five-minute detail for hourly totals (moved by the
  // first write of a new hour), and still show in the 7-day view; the 48-hour view no longer has them.
  now = t0 + 51 * HOUR_MS;
  await report(id, now, 2700, 0, 0, 7200 + 49 * 3600);
  assert.equal(db.series5m.get([id, t0 / 1000]), undefined, 'the detail of 10:00 moved');
  assert.deepEqual(db.seriesHourly.get([id, t0 / 1000]), [12_700, 15_000 + 21_000, 6000, 0, 0]);
  const later = seriesOf(db, id, '7d', now);
  assert.equal(later.values.bytesFromUpstream.reduce((a, b) => a + b, 0), 12_700 + 1000 + 1000);
  assert.equal(seriesOf(db, id, '48h', now).values.bytesFromUpstream.reduce((a, b) => a + b, 0), 1000);

  // 31 days on, the hourly totals are gone.
  now = t0 + 31 * 24 * HOUR_MS;
  await report(id, now, 3700, 0, 0, 7200 + 31 * 86400);
  assert.equal(db.seriesHourly.get([id, t0 / 1000]), undefined, 'past 30 days: dropped');
  assert.equal(seriesOf(db, id, '30d', now).values.bytesFromUpstream.reduce((a, b) => a + b, 0), 1000 + 1000, 'hour 51 and today remain');

  // A deleted satellite leaves no series behind.
  await deleteSatellite(ctx, id);
  assert.deepEqual([...db.series5m.getKeys({ start: [id, 0], end: [id, Number.MAX_SAFE_INTEGER] })], []);
  assert.deepEqual([...db.seriesHourly.getKeys({ start: [id, 0], end: [id, Number.MAX_SAFE_INTEGER] })], []);
  assert.throws(() => seriesOf(db, id, '24h', now), { code: 'SATELLITE_UNKNOWN' });
});

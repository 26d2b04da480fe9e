import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Store } from '../../src/store/index.ts';
import { parseDesiredState, desiredRefs } from '../../src/sync/desired-state.ts';
import { selectChildren } from '../../src/sync/platform.ts';
import { Meter } from '../../src/sync/meter.ts';
import { SyncWindows } from '../../src/sync/windows.ts';
import { RateLimiter } from '../../src/lib/rate-limiter.ts';

const D = 'sha256:' + 'a'.repeat(64);

test('desired state: valid documents parse, every problem is named', () => {
  const doc = parseDesiredState({
    generation: 3,
    upstream: { url: 'http://127.0.0.1:5000' },
    platforms: ['linux/arm64'],
    images: [{ repository: 'library/app', tags: ['v1', 'v1'], digests: [D] }, { repository: 'tools/x', tags: ['1'], platforms: ['linux/amd64'] }],
  });
  assert.deepEqual(
    desiredRefs(doc).map((r) => [r.repository, r.reference, r.platforms]),
    [['library/app', 'v1', ['linux/arm64']], ['library/app', D, ['linux/arm64']], ['tools/x', '1', ['linux/amd64']]],
  );
  assert.throws(
    () =>
      parseDesiredState({
        generation: -1,
        upstream: { url: 'ftp://x' },
        images: [{ repository: 'Bad Name', tags: ['-x'], digests: ['sha256:zz'] }, { repository: 'ok' }],
        extra: true,
      }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'DESIRED_STATE_INVALID');
      assert.match(err.message, /\/generation: must be >= 0/);
      assert.match(err.message, /\/upstream\/url: must match pattern/);
      assert.match(err.message, /unknown key "extra"/);
      return true;
    },
  );
  assert.throws(
    () => parseDesiredState({ generation: 1, upstream: { url: 'http://u:1' }, images: [{ repository: 'Bad', tags: ['-x'], digests: ['sha256:zz'] }, { repository: 'ok' }] }),
    (err: Error) => {
      assert.match(err.message, /\/images\/0\/repository: invalid repository name Bad/);
      assert.match(err.message, /\/images\/0\/tags\/0: invalid tag -x/);
      assert.match(err.message, /\/images\/0\/digests\/0: invalid digest/);
      assert.match(err.message, /\/images\/1: needs at least one tag or digest/);
      return true;
    },
  );
});

test('platform filter keeps matching children, variant-less filters match every variant', () => {
  const child = (os: string, architecture: string, variant?: string) => ({
    mediaType: 'm',
    digest: D,
    size: 1,
    platform: { os, architecture, ...(variant ? { variant } : {}) },
  });
  const children = [child('linux', 'amd64'), child('linux', 'arm64', 'v8'), child('linux', 'arm', 'v7'), child('unknown', 'unknown')];
  assert.deepEqual(selectChildren(children, ['linux/arm64']).map((c) => c.platform?.architecture), ['arm64']);
  assert.deepEqual(selectChildren(children, ['linux/arm/v6']).length, 0);
  assert.deepEqual(selectChildren(children, ['linux/arm/v7', 'linux/amd64']).length, 2);
  assert.equal(selectChildren(children, undefined).length, 4);
});

test('meter counts per hour/day/month, persists across instances, and enforces caps until the period rolls', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hs-meter-'));
  const store = await Store.open({ dataDir: dir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, pino({ level: 'silent' }));
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  let now = new Date('2026-11-25T04:59:00Z');
  const db = store.syncState();
  const meter = new Meter(db, { hourBytes: 1000, monthBytes: 5000 }, () => now);
  meter.add(600);
  assert.equal(meter.capReached(), undefined);
  meter.add(500);
  const cap = meter.capReached();
  assert.equal(cap?.period, 'hour');
  assert.equal(cap?.resetsAt.toISOString(), '2026-11-25T05:00:00.000Z');
  await meter.flush();
  const again = new Meter(db, { hourBytes: 1000, monthBytes: 5000 }, () => now);
  assert.equal(again.used('hour'), 1100, 'persisted');
  now = new Date('2026-11-25T05:00:01Z');
  assert.equal(again.capReached(), undefined, 'a new hour resets the hourly cap');
  assert.deepEqual(again.usage().month, { period: '2026-11', bytes: 1100 });
  again.add(4000);
  assert.equal(again.capReached()?.period, 'hour', 'the shortest period reached is reported first');
  await again.flush();
  const monthly = new Meter(db, { monthBytes: 5000 }, () => now);
  assert.equal(monthly.capReached()?.period, 'month');
  assert.equal(monthly.capReached()?.resetsAt.toISOString(), '2026-12-01T00:00:00.000Z');

  // add() keeps its keys for the hour: the next hour (here also a new day and month) gets its own.
  let at = new Date('2026-11-30T23:59:59.999Z');
  const rolling = new Meter(db, {}, () => at);
  rolling.add(5);
  at = new Date('2026-12-01T00:00:00.000Z');
  rolling.add(7);
  assert.deepEqual(rolling.usage(), { hour: { period: '2026-12-01T00', bytes: 7 }, day: { period: '2026-12-01', bytes: 7 }, month: { period: '2026-12', bytes: 7 } });
  at = new Date('2026-11-30T23:00:00.000Z');
  rolling.add(1);
  assert.equal(rolling.used('hour'), 6, 'back in the earlier hour (a clock set back): its keys again');
  await rolling.flush();
});

test('sync windows: cron minutes are open, others closed, next opening computed', () => {
  const w = new SyncWindows(['* 1-3 * * *'], 'UTC');
  assert.equal(w.isOpen(new Date('2026-11-25T02:30:45Z')), true);
  assert.equal(w.isOpen(new Date('2026-11-25T04:00:00Z')), false);
  assert.equal(w.msUntilOpen(new Date('2026-11-25T00:59:30Z')), 30_000);
  assert.equal(new SyncWindows([]).isOpen(), true);
  assert.throws(() => new SyncWindows(['61 * * * *']), /\/sync\/windows\/0: "61 \* \* \* \*"/);
  assert.throws(() => new SyncWindows(['0 * * * * *']), /must have 5 fields/);
  w.close();
});

test('rate limiter holds the sum of takers to the configured rate', async () => {
  const limiter = new RateLimiter(1024 * 1024);
  const started = performance.now();
  // 3 takers x 512 KiB = 1.5 MiB at 1 MiB/s with a 256 KiB burst: at least ~1.2 s.
  await Promise.all([0, 1, 2].map(async () => {
    for (let i = 0; i < 8; i++) await limiter.take(64 * 1024);
  }));
  const elapsed = performance.now() - started;
  assert.ok(elapsed > 1100, `took ${elapsed} ms`);
  assert.ok(elapsed < 3000, `took ${elapsed} ms`);
});

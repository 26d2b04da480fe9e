import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { GC_REPEAT_MS, MemoryWatchdog, memoryLimits, nextShedding, ownCgroupDir, sheddingOver, v8Gc } from '../../src/daemon/memory/index.ts';
import type { MemoryConfig } from '../../src/daemon/memory/index.ts';
import { makeTempDir } from '../helpers/tmp.ts';

const MiB = 1024 * 1024;
const config = (over: Partial<MemoryConfig> = {}): MemoryConfig => ({ softLimitBytes: 100 * MiB, resumeBytes: 80 * MiB, softLimitPercent: 0, sampleIntervalMs: 1000, retryAfterSeconds: 7, ...over });

test('hysteresis: sheds above the soft limit, keeps shedding until under the resume mark', () => {
  const limits = { softBytes: 100, resumeBytes: 80 };
  assert.deepEqual(
    sheddingOver([50, 100, 101, 99, 90, 80, 79, 85, 99, 100, 150, 60], limits),
    [false, false, true, true, true, true, false, false, false, false, true, false],
  );
  // Disabled: never sheds, whatever the samples.
  assert.deepEqual(sheddingOver([1e12, 1e12], { softBytes: 0, resumeBytes: 0 }), [false, false]);
  assert.equal(nextShedding(true, 80, limits), true, 'exactly at the resume mark is not under it');
});

test('limits: bytes, a share of the cgroup memory.max (the lower wins), a default resume mark', () => {
  assert.deepEqual(memoryLimits(config(), undefined), { softBytes: 100 * MiB, resumeBytes: 80 * MiB });
  assert.deepEqual(memoryLimits(config({ resumeBytes: 0 }), undefined), { softBytes: 100 * MiB, resumeBytes: 85 * MiB });
  assert.deepEqual(memoryLimits(config({ softLimitBytes: 0 }), 400 * MiB), { softBytes: 0, resumeBytes: 0 }, 'no percentage: off');
  assert.deepEqual(memoryLimits(config({ softLimitBytes: 0, softLimitPercent: 50, resumeBytes: 0 }), 100 * MiB), { softBytes: 50 * MiB, resumeBytes: Math.floor(50 * MiB * 0.85) });
  // 50 % of 400 MiB is 200 MiB: the byte limit (100 MiB) is lower and wins.
  assert.equal(memoryLimits(config({ softLimitPercent: 50 }), 400 * MiB).softBytes, 100 * MiB);
  // A percentage but no cgroup limit: only the byte limit counts.
  assert.equal(memoryLimits(config({ softLimitBytes: 0, softLimitPercent: 50 }), undefined).softBytes, 0);
  // A resume mark not below the soft limit that a percentage produced: 85 % instead.
  assert.equal(memoryLimits(config({ softLimitBytes: 0, softLimitPercent: 10, resumeBytes: 80 * MiB }), 100 * MiB).resumeBytes, Math.floor(10 * MiB * 0.85));
});

test('watchdog: injected samples drive state, 429 counting, one log line per change, GC on crossing and while shedding', () => {
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const samples = [50, 120, 130, 125, 110, 79, 150].map((n) => n * MiB);
  let clock = 1_000_000;
  let gcs = 0;
  const wd = new MemoryWatchdog({ config: config(), log, sample: () => samples.shift()!, now: () => clock, gc: () => void gcs++, cgroupDir: null });
  const changes: boolean[] = [];
  wd.onChange((s) => changes.push(s));
  let reclaimedBeforeGc = 0;
  wd.addReclaimer(() => {
    if (reclaimedBeforeGc === gcs) reclaimedBeforeGc++;
  });

  wd.tick(); // 50
  assert.equal(wd.status().state, 'ok');
  assert.equal(wd.shedBlobStream(), undefined);
  wd.tick(); // 120: crosses
  assert.equal(wd.status().state, 'shedding');
  assert.equal(wd.status().since, new Date(1_000_000).toISOString());
  assert.equal(gcs, 1, 'one collection when crossing');
  assert.equal(wd.shedBlobStream(), 7);
  assert.equal(wd.shedBlobStream(), 7);
  clock += 1000;
  wd.tick(); // 130
  assert.equal(gcs, 1, 'not again within GC_REPEAT_MS');
  clock += GC_REPEAT_MS;
  wd.tick(); // 125
  assert.equal(gcs, 2, 'again after GC_REPEAT_MS while still shedding');
  assert.equal(reclaimedBeforeGc, 2, 'pooled buffers dropped before each collection');
  wd.tick(); // 110: between the marks, still shedding
  assert.equal(wd.shedding, true);
  wd.tick(); // 79: under resume
  assert.equal(wd.status().state, 'ok');
  assert.equal(wd.status().since, null);
  assert.equal(wd.shedBlobStream(), undefined);
  wd.tick(); // 150: a second episode
  const s = wd.status();
  assert.deepEqual({ state: s.state, shedRequests: s.shedRequests, episodes: s.episodes, rssBytes: s.rssBytes, cgroup: s.cgroup }, { state: 'shedding', shedRequests: 2, episodes: 2, rssBytes: 150 * MiB, cgroup: null });
  assert.deepEqual(changes, [true, false, true]);
  const said = lines.map((l) => l.msg).filter((m) => m.startsWith('memory'));
  assert.equal(said.filter((m) => m.startsWith('memory above the soft limit')).length, 2, 'one line per episode start');
  assert.equal(said.filter((m) => m.startsWith('memory under the resume mark')).length, 1);
  const stop = lines.find((l) => l.msg.startsWith('memory under'))! as unknown as { shedRequests: number };
  assert.equal(stop.shedRequests, 2, 'the stop line counts what the episode shed');
});

test('watchdog: RSS that settles between the marks (the floor is above the resume mark) ends shedding once a collection period frees nothing more', () => {
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  // soft 100, resume 80: the load ends at 130; collections bring RSS down to 95, then it stays at 94.5.
  const samples = [130, 110, 95, 94.5, 94.5, 150, 96, 96].map((n) => n * MiB);
  let clock = 0;
  let gcs = 0;
  const wd = new MemoryWatchdog({ config: config(), log, sample: () => samples.shift()!, now: () => clock, gc: () => void gcs++, cgroupDir: null });
  const changes: boolean[] = [];
  wd.onChange((s) => changes.push(s));
  const period = () => {
    clock += GC_REPEAT_MS;
    wd.tick();
  };
  wd.tick(); // 130: sheds, collects
  period(); // 110: above the soft limit, collects again
  assert.equal(wd.shedding, true);
  period(); // 95: under the soft limit but 15 MiB lower than at the last collection: still freeing
  assert.equal(wd.shedding, true);
  assert.equal(gcs, 3);
  clock += 1000;
  wd.tick(); // 94.5 within the period: no decision between collections
  assert.equal(wd.shedding, true);
  period(); // 94.5 a period later, 0.5 MiB lower: settled above the resume mark, so shedding ends
  assert.equal(wd.shedding, false);
  assert.equal(gcs, 3, 'no collection when resuming');
  assert.equal(wd.shedBlobStream(), undefined);
  period(); // 150: a second episode starts as before
  assert.equal(wd.shedding, true);
  period(); // 96: first collection tick of this episode under the soft limit: compared with 150, still freeing
  assert.equal(wd.shedding, true);
  period(); // 96 again: settled
  assert.equal(wd.shedding, false);
  assert.deepEqual(changes, [true, false, true, false]);
  const said = lines.map((l) => l.msg);
  assert.equal(said.filter((m) => m.startsWith('memory settled under the soft limit')).length, 2);
  assert.equal(said.filter((m) => m.startsWith('memory.resumeBytes is below')).length, 1, 'the resume mark is named once, not per episode');
  // Above the soft limit nothing settles, however flat: 120, 120, 120 keeps shedding.
  const flat = new MemoryWatchdog({ config: config(), log: pino({ level: 'silent' }), sample: () => 120 * MiB, now: () => clock, gc: () => undefined, cgroupDir: null });
  for (let i = 0; i < 4; i++) {
    clock += GC_REPEAT_MS;
    flat.tick();
  }
  assert.equal(flat.shedding, true);
});

test('watchdog: disabled config never samples on a timer and reports disabled', () => {
  let sampled = 0;
  const wd = new MemoryWatchdog({ config: config({ softLimitBytes: 0 }), log: pino({ level: 'silent' }), sample: () => ++sampled, cgroupDir: null });
  wd.start();
  wd.close();
  assert.equal(sampled, 0);
  assert.equal(wd.status().state, 'disabled');
  assert.equal(wd.shedBlobStream(), undefined);
});

test('cgroup: the own cgroup from /proc/self/cgroup; memory.max "max" is no limit; a percentage of a numeric one', async (t) => {
  const root = await makeTempDir(t, 'hs-cgroup-');
  const dir = join(root, 'system.slice', 'satellite.service');
  await mkdir(dir, { recursive: true });
  const proc = join(root, 'cgroup');
  await writeFile(proc, '0::/system.slice/satellite.service\n');
  assert.equal(ownCgroupDir(root, proc), undefined, 'no memory.current: not a memory cgroup');
  await writeFile(join(dir, 'memory.current'), '52428800\n');
  await writeFile(join(dir, 'memory.max'), 'max\n');
  assert.equal(ownCgroupDir(root, proc), dir);
  const log = pino({ level: 'silent' });
  const unlimited = new MemoryWatchdog({ config: config({ softLimitBytes: 0, softLimitPercent: 50 }), log, cgroupDir: dir, sample: () => 0 });
  assert.equal(unlimited.limits.softBytes, 0);
  await writeFile(join(dir, 'memory.max'), `${400 * MiB}\n`);
  const wd = new MemoryWatchdog({ config: config({ softLimitBytes: 0, softLimitPercent: 50, resumeBytes: 0 }), log, cgroupDir: dir, sample: () => 0 });
  assert.equal(wd.limits.softBytes, 200 * MiB);
  assert.deepEqual(wd.status().cgroup, { currentBytes: 52428800, maxBytes: 400 * MiB });
  // This machine's own cgroup file parses (whatever it says) without throwing.
  ownCgroupDir();
});

test('v8Gc collects without --expose-gc and leaves no global gc behind', async () => {
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
  let collected = false;
  const registry = new FinalizationRegistry(() => {
    collected = true;
  });
  (() => registry.register({ big: new Array(1000).fill(0) }, 'x'))();
  for (let i = 0; i < 5 && !collected; i++) {
    v8Gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(collected, true, 'an unreachable object was collected');
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined');
});

test('BufferPool.trim drops idle buffers and reports their bytes; leased ones are not touched', async () => {
  const { BufferPool } = await import('../../src/lib/buffer-pool.ts');
  const pool = new BufferPool({ budgetBytes: 1 * MiB, minChunkBytes: 64 * 1024, maxChunkBytes: 256 * 1024 });
  const size = pool.join();
  const a = pool.acquire(size);
  const b = pool.acquire(size);
  pool.release(a);
  assert.equal(pool.trim(), size);
  assert.deepEqual(pool.stats(), { users: 1, leasedBytes: size, freeBytes: 0 });
  assert.notEqual(pool.acquire(size), a, 'a trimmed buffer is not handed out again');
  pool.release(b);
});

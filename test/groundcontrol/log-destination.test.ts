import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LogSinkStats } from '../../src/lib/log-sink.ts';
import { TEST_ADMIN_TOKEN } from '../helpers/groundcontrol.ts';
import { mountFullTmpfs, openForWrite, rssBytes, startWithStdout, timedGets } from '../helpers/log-destination.ts';
import { join } from 'node:path';

const MiB = 1024 * 1024;
const AUTH = { Authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

async function gcLogStats(url: string): Promise<LogSinkStats> {
  const res = await fetch(`${url}/api/v1/status`, { headers: AUTH, signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { log: LogSinkStats | null; counts: unknown };
  assert.ok(body.counts, 'still the fleet status');
  assert.ok(body.log, 'the status has a log section');
  return body.log;
}

test('Ground Control with stdout on a full filesystem answers fast and counts the lines it drops', async (t) => {
  const tmpfs = await mountFullTmpfs(t);
  const fd = openForWrite(t, join(tmpfs.dir, 'groundcontrol.log'));
  const gc = await startWithStdout(t, { program: 'groundcontrol', stdout: fd, config: { log: { level: 'debug', bufferBytes: 65536 } } });
  const health = await timedGets(`${gc.url}/api/v1/healthz`, 400);
  assert.deepEqual(new Set(health.statuses), new Set([200]));
  assert.ok(health.medianMs < 100, `median healthz ${health.medianMs.toFixed(1)} ms`);
  t.diagnostic(`full disk: healthz median ${health.medianMs.toFixed(1)} ms, max ${health.maxMs.toFixed(0)} ms`);
  const created = await fetch(`${gc.url}/api/v1/satellites`, {
    method: 'POST',
    headers: { ...AUTH, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'edge-1' }),
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(created.status, 201, 'the API still writes');
  const stats = await gcLogStats(gc.url);
  assert.equal(stats.destination, 'file');
  assert.equal(stats.lastError, 'ENOSPC');
  assert.equal(stats.state, 'failing');
  assert.ok(stats.droppedLines > 0, JSON.stringify(stats));
  assert.equal(await gc.stop(), 0, 'a clean stop with a full disk');
});

test('Ground Control with stdout a pipe nobody reads: bounded memory, requests succeed, and it still stops cleanly', async (t) => {
  const gc = await startWithStdout(t, { program: 'groundcontrol', stdout: 'pipe', config: { log: { level: 'debug', bufferBytes: 65536 } } });
  const url = `${gc.url}/api/v1/healthz`;
  const loop = async (ms: number) => {
    const end = Date.now() + ms;
    let ok = 0;
    let bad = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < end) {
          const res = await fetch(url, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
          if (res?.status === 200) ok++;
          else bad++;
          await res?.arrayBuffer();
        }
      }),
    );
    return { ok, bad };
  };
  await loop(4000); // warm-up: JIT and heap settle before the baseline
  const before = rssBytes(gc.pid);
  const load = await loop(10_000);
  const after = rssBytes(gc.pid);
  t.diagnostic(`10 s loop: ${load.ok} requests; RSS ${(before / MiB).toFixed(1)} -> ${(after / MiB).toFixed(1)} MiB`);
  assert.equal(load.bad, 0);
  assert.ok(after - before < 16 * MiB, `RSS grew ${((after - before) / MiB).toFixed(1)} MiB`);
  const stats = await gcLogStats(gc.url);
  assert.equal(stats.destination, 'pipe');
  assert.ok(stats.droppedLines > 0, JSON.stringify(stats));
  // The pipe is still full and unread: SIGTERM must still end the process.
  assert.equal(await gc.stop(), 0, 'exits with lines still held for the pipe');
});

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { LogSinkStats } from '../../src/lib/log-sink.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { mountFullTmpfs, openForWrite, rssBytes, runWrk, startWithStdout, timedGets } from '../helpers/log-destination.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';
import { makeTempDir } from '../helpers/tmp.ts';

const MiB = 1024 * 1024;
const DROPPED = /"msg":"(\d+) log lines dropped"/;

async function logStats(url: string): Promise<LogSinkStats> {
  const res = await fetch(`${url}/_satellite/status`, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { log: LogSinkStats | null };
  assert.ok(body.log, 'the status has a log section');
  return body.log;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

test('stdout on a full filesystem: /v2/ answers fast, push and pull work, lines are dropped and counted, the warning comes once there is room', async (t) => {
  const tmpfs = await mountFullTmpfs(t);
  const logFile = join(tmpfs.dir, 'satellite.log');
  const fd = openForWrite(t, logFile);
  // debug: every request logs a line; the smallest buffer so a few hundred requests overflow it.
  const sat = await startWithStdout(t, { program: 'satellite', stdout: fd, config: { log: { level: 'debug', bufferBytes: 65536 } } });

  const first = await timedGets(`${sat.url}/v2/`, 30);
  assert.deepEqual(new Set(first.statuses), new Set([200]));
  assert.ok(first.medianMs < 100, `median GET /v2/ ${first.medianMs.toFixed(1)} ms with stdout on a full disk`);

  // Push and pull with skopeo while every log write fails with ENOSPC.
  const layout = await makeTempDir(t, 'hs-log-layout-');
  const image = await makeImage(layout, { tag: 'v1', seed: 'log-full-disk', layerSizes: [200_000, 50_000] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${sat.url.slice(7)}/logs/app:v1`);
  const pulled = await makeTempDir(t, 'hs-log-pulled-');
  await skopeoCopy(`docker://${sat.url.slice(7)}/logs/app:v1`, `oci:${pulled}:v1`);
  const raw = await skopeoInspect(`docker://${sat.url.slice(7)}/logs/app:v1`, { raw: true });
  assert.equal(raw.toString(), image.manifest.toString(), 'the manifest pulled is the one pushed');

  // Enough request lines to overflow the 64 KiB buffer.
  const more = await timedGets(`${sat.url}/v2/`, 400);
  assert.deepEqual(new Set(more.statuses), new Set([200]));
  assert.ok(more.medianMs < 100, `median GET /v2/ ${more.medianMs.toFixed(1)} ms after the buffer filled`);
  const full = await logStats(sat.url);
  assert.equal(full.destination, 'file');
  assert.equal(full.state, 'failing');
  assert.equal(full.lastError, 'ENOSPC');
  assert.ok(full.droppedLines > 0, `lines dropped: ${JSON.stringify(full)}`);
  assert.ok(full.bufferedBytes <= 65536, `held ${full.bufferedBytes} bytes`);
  t.diagnostic(`full disk: GET /v2/ median ${first.medianMs.toFixed(1)} ms then ${more.medianMs.toFixed(1)} ms (max ${more.maxMs.toFixed(0)}); ${full.droppedLines} lines dropped`);

  // Room again: the held lines and then the warning reach the file (retried every second).
  await tmpfs.makeRoom();
  const warning = await waitFor(
    'the "log lines dropped" warning in the log file',
    async () => DROPPED.exec(await readFile(logFile, 'utf8')) ?? undefined,
    10_000,
  );
  assert.ok(Number(warning[1]) >= full.droppedLines, `warned about ${warning[1]} lines; ${full.droppedLines} were dropped before`);
  const after = await logStats(sat.url);
  assert.ok(after.droppedLines >= full.droppedLines);
  assert.notEqual(after.state, 'failing');
  assert.equal(await sat.stop(), 0, 'a clean stop');
});

test('stdout a pipe nobody reads: memory stays bounded under 20 s of wrk, requests succeed, the counter moves; draining brings the warning', async (t) => {
  const sat = await startWithStdout(t, { program: 'satellite', stdout: 'pipe', config: { log: { level: 'debug' } } });
  // Nobody reads child.stdout until the end: the pipe fills, then the 1 MiB sink buffer.
  const warm = await runWrk(`${sat.url}/v2/`, 3);
  assert.equal(warm.bad, 0, warm.output);
  const before = rssBytes(sat.pid);
  const load = await runWrk(`${sat.url}/v2/`, 20);
  const after = rssBytes(sat.pid);
  t.diagnostic(`wrk 20 s: ${load.requests} requests; RSS ${(before / MiB).toFixed(1)} -> ${(after / MiB).toFixed(1)} MiB`);
  assert.equal(load.bad, 0, load.output);
  assert.ok(load.requests > 1000, `only ${load.requests} requests in 20 s`);
  const stats = await logStats(sat.url);
  // The sink's own bound is bufferedBytes (asserted below); RSS only catches a gross leak elsewhere.
  // Run as shipped (1 MiB young generation), RSS moved -5 to -3 MiB under 20 s of wrk here; with
  // Node's defaults it grew 32-40 MiB (the young generation growing to 2 x 16 MiB), which failed CI.
  assert.ok(after - before < 40 * MiB, `RSS grew ${((after - before) / MiB).toFixed(1)} MiB; ${(stats.droppedBytes / MiB).toFixed(1)} MiB of lines were dropped`);
  assert.equal(stats.destination, 'pipe');
  assert.ok(stats.droppedLines > 0, `lines dropped: ${JSON.stringify(stats)}`);
  assert.ok(stats.bufferedBytes <= stats.bufferBytes);
  // The same counter on the metrics listener, read after the status: it can only have grown.
  const exposition = await (await fetch(sat.metricsUrl!)).text();
  const metric = /^harbor_satellite_log_dropped_lines_total (\d+)$/m.exec(exposition);
  assert.ok(metric, 'log_dropped_lines_total is exposed');
  assert.ok(Number(metric[1]) >= stats.droppedLines, `metric ${metric[1]} < status ${stats.droppedLines}`);
  const quick = await timedGets(`${sat.url}/v2/`, 20);
  assert.deepEqual(new Set(quick.statuses), new Set([200]));
  assert.ok(quick.medianMs < 100, `median GET /v2/ ${quick.medianMs.toFixed(1)} ms while stdout is blocked`);

  // The reader comes back: what was held comes out, then the warning with the count.
  let out = '';
  sat.child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    out = (out + s).slice(-200_000);
  });
  const warning = await waitFor('the "log lines dropped" warning on stdout', async () => DROPPED.exec(out) ?? undefined, 15_000);
  assert.ok(Number(warning[1]) > 0);
  const line = JSON.parse(out.slice(out.lastIndexOf('\n', warning.index) + 1).split('\n')[0]!) as { level: number; droppedLines: number };
  assert.equal(line.level, 40, 'a warning');
  assert.equal(line.droppedLines, Number(warning[1]));
  assert.equal(await sat.stop(), 0, 'a clean stop');
});

test('stdout reader gone (EPIPE): the satellite keeps serving and counts every line as dropped', async (t) => {
  const sat = await startWithStdout(t, { program: 'satellite', stdout: 'pipe', config: { log: { level: 'debug' } } });
  sat.child.stdout!.destroy();
  const gets = await timedGets(`${sat.url}/v2/`, 50);
  assert.deepEqual(new Set(gets.statuses), new Set([200]));
  const closed = await logStats(sat.url);
  assert.equal(closed.state, 'closed');
  assert.equal(closed.lastError, 'EPIPE');
  assert.ok(closed.droppedLines > 0, JSON.stringify(closed));
  await timedGets(`${sat.url}/v2/`, 10);
  const later = await logStats(sat.url);
  assert.ok(later.droppedLines >= closed.droppedLines + 10, `every request line counted: ${closed.droppedLines} -> ${later.droppedLines}`);
  assert.equal(sat.child.exitCode, null, 'still running');
  assert.equal(await sat.stop(), 0, 'a clean stop');
});

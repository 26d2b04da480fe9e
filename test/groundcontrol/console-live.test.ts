import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { topic } from '../../src/protocol/index.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { addAndRegister, connectSatellite, eventually, startGroundControl, TEST_ADMIN_TOKEN } from '../helpers/groundcontrol.ts';
import { makeTempDir } from '../helpers/tmp.ts';

// The callbacks given to page.evaluate/waitForFunction run in the page (tsc has no DOM lib here).
declare const document: any;
declare const window: any;

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

interface Counters {
  up: number;
  served: number;
  saved: number;
  uptime: number;
}

/** A state report as a newer satellite sends it (download, disk, traffic, proxy, process). */
function stateReport(id: string, seq: number, at: number, c: Counters, opts: { version?: string; remaining?: number; hits?: number; misses?: number; pending?: { done: number; total: number } } = {}) {
  const images: object[] = [{ repository: 'apps/web', reference: 'v1', status: 'ok', digest: `sha256:${'a'.repeat(64)}` }];
  if (opts.pending) images.push({ repository: 'apps/big', reference: 'v2', status: 'pending', bytesDone: opts.pending.done, bytesTotal: opts.pending.total });
  const remaining = opts.remaining ?? 0;
  return JSON.stringify({
    type: 'state', satelliteId: id, seq, at: new Date(at).toISOString(), version: opts.version ?? '0.5.0', desiredGeneration: null, appliedGeneration: null,
    images,
    disk: { blobs: 12, bytes: 3 * GiB, freeBytes: 5 * GiB, totalBytes: 8 * GiB, condition: 'ok' },
    lastSync: null,
    upstream: { reachable: true, lastError: null },
    download: { bytesDone: 0, bytesTotal: remaining, bytesRemaining: remaining },
    traffic: { bytesFromUpstream: c.up, bytesServed: c.served, bytesFromPeers: 3 * MiB, bytesToPeers: 1 * MiB },
    peerUrl: 'http://127.0.0.1:8585',
    proxy: { hits: opts.hits ?? 0, misses: opts.misses ?? 0, bytesFromUpstream: 0, bytesServedFromCache: c.saved },
    process: { rssBytes: 80 * MiB, uptimeSeconds: c.uptime, arch: 'arm64', board: 'Raspberry Pi 4 Model B' },
  });
}

test('console live: reports update the overview and the satellite page without reload or polling; traffic charts', async (t) => {
  const gc = await startGroundControl(t);
  const a = await addAndRegister(gc, 'edge-live', 'berlin');
  const b = await addAndRegister(gc, 'edge-quiet', 'hamburg');
  const sat = await connectSatellite(t, gc.mqttUrl as string, a);
  let seq = 0;
  let lastCounts: unknown;
  const now = Date.now();
  // Six hours of history, one report every five minutes: the charts have a point per bucket.
  const c: Counters = { up: 10 * MiB, served: 20 * MiB, saved: 0, uptime: 60 };
  await sat.publishAsync(topic(a.satelliteId, 'presence'), JSON.stringify({ type: 'presence', satelliteId: a.satelliteId, online: true, at: new Date().toISOString(), version: '0.5.0' }), { qos: 1, retain: true });
  for (let i = 72; i >= 1; i--) {
    const wave = 1 + Math.sin(i / 6);
    c.up += Math.round((20 + 30 * wave) * MiB);
    c.served += Math.round((60 + 50 * wave) * MiB);
    c.saved += Math.round((20 + 25 * wave) * MiB);
    c.uptime += 300;
    await sat.publishAsync(topic(a.satelliteId, 'state'), stateReport(a.satelliteId, ++seq, now - i * 5 * 60_000, c, { hits: 3, misses: 1 }), { qos: 1 });
  }

  // 73 messages, each a series write: on a loaded 2-core box (the suite runs a browser test beside
  // this one) they can take longer than 10 s; the last counts are in the failure message.
  await eventually(
    async () => {
      const counts = (await gc.api('GET', '/api/v1/status')).body.counts;
      return counts.online === 1 ? counts : (lastCounts = counts, undefined);
    },
    30_000,
    'Ground Control recorded the satellite online',
  ).catch((err: Error) => {
    throw new Error(`${err.message}; counts ${JSON.stringify(lastCounts)}`);
  });

  const shots = process.env.CONSOLE_SCREENSHOT_DIR ?? (await makeTempDir(t, 'hs-console-shots-'));
  await mkdir(shots, { recursive: true });
  const browser = await launchChromium(t);
  const context = await browser.newContext({ viewport: { width: 1360, height: 800 } });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy|Refused/i.test(m.text())) pageErrors.push(m.text());
  });
  const requests: string[] = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  const count = (p: string) => requests.filter((x) => x === p).length;

  await page.goto(`${gc.url}/console/`);
  await page.fill('#token', TEST_ADMIN_TOKEN);
  await page.click('button[type=submit]');
  const row = `tr[data-id="${a.satelliteId}"]`;
  await page.waitForSelector(row);
  await page.waitForFunction((sel) => /75%/.test(document.querySelector(sel)?.textContent ?? ''), row, { timeout: 10_000 });
  await page.waitForFunction(() => document.querySelector('button[data-count="online"] .n')?.textContent === '1', undefined, { timeout: 10_000 });
  assert.ok(count('/api/v1/live') >= 1, 'the page opened the live stream');
  await page.evaluate(() => {
    window.__sameDocument = true;
  });

  // Quiet fleet: no request at all (the old page asked every 3 s).
  const idleFrom = count('/api/v1/status');
  await new Promise((r) => setTimeout(r, 7000));
  assert.equal(count('/api/v1/status'), idleFrom, 'no polling while nothing changes');

  // A report arrives: the row shows it within seconds, one refetch of the page's rows.
  c.uptime += 60;
  await sat.publishAsync(topic(a.satelliteId, 'state'), stateReport(a.satelliteId, ++seq, Date.now(), c, { version: '0.6.1', remaining: 5 * MiB, hits: 9, misses: 1 }), { qos: 1 });
  await page.waitForFunction((sel) => /0\.6\.1/.test(document.querySelector(sel)?.textContent ?? ''), row, { timeout: 10_000 });
  const text = (await page.textContent(row)) ?? '';
  assert.match(text, /5\.0 MiB/, 'bytes still to download');
  assert.match(text, /90%/, 'cache hit ratio');
  assert.match(text, /3\.0 GiB/, 'disk used');
  assert.match(text, /5\.0 GiB/, 'disk free');
  const refetches = count('/api/v1/status') - idleFrom;
  assert.ok(refetches >= 1 && refetches <= 2, `refetched the visible page ${refetches} time(s)`);
  // The other satellite comes online: the counts change without a reload.
  const quiet = await connectSatellite(t, gc.mqttUrl as string, b);
  await quiet.publishAsync(topic(b.satelliteId, 'presence'), JSON.stringify({ type: 'presence', satelliteId: b.satelliteId, online: true, at: new Date().toISOString() }), { qos: 1 });
  await page.waitForFunction(() => document.querySelector('button[data-count="online"] .n')?.textContent === '2', undefined, { timeout: 10_000 });
  await page.screenshot({ path: join(shots, 'console-live-overview.png'), fullPage: true });

  // The satellite page: traffic charts from the hour of reports; the pending image's progress
  // bar moves as reports arrive.
  await page.click(`a[href="#/satellite/${a.satelliteId}"]`);
  await page.waitForSelector('figure.chart[data-metric="bytesFromUpstream"] canvas');
  for (const metric of ['bytesFromUpstream', 'bytesServed', 'bytesSavedByCache']) {
    const points = Number(await page.getAttribute(`figure.chart[data-metric="${metric}"]`, 'data-points'));
    assert.ok(points >= 10, `${metric}: ${points} buckets with data`);
  }
  // The WAN chart's line is drawn: pixels in its stroke colour (#2b59c3) on the canvas.
  const drawn = await page.evaluate(() => {
    const canvas = document.querySelector('figure.chart[data-metric="bytesFromUpstream"] canvas');
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
    let n = 0;
    for (let i = 0; i < data.length; i += 4) if (Math.abs(data[i] - 43) < 30 && Math.abs(data[i + 1] - 89) < 30 && Math.abs(data[i + 2] - 195) < 30 && data[i + 3] > 200) n++;
    return n;
  });
  assert.ok(drawn > 50, `the series line is drawn (${drawn} pixels)`);

  c.uptime += 60;
  c.up += 100 * MiB;
  await sat.publishAsync(topic(a.satelliteId, 'state'), stateReport(a.satelliteId, ++seq, Date.now(), c, { pending: { done: 250, total: 1000 }, remaining: 750 }), { qos: 1 });
  await page.waitForSelector('tr.img-pending progress');
  assert.equal(await page.getAttribute('tr.img-pending progress', 'value'), '250');
  c.uptime += 60;
  await sat.publishAsync(topic(a.satelliteId, 'state'), stateReport(a.satelliteId, ++seq, Date.now(), c, { pending: { done: 800, total: 1000 }, remaining: 200 }), { qos: 1 });
  await page.waitForFunction(() => document.querySelector('tr.img-pending progress')?.getAttribute('value') === '800', undefined, { timeout: 10_000 });
  await page.screenshot({ path: join(shots, 'console-live-satellite.png'), fullPage: true });
  // Peers and the process, from the same reports.
  assert.match((await page.textContent('dd.peers')) ?? '', /shares blobs with its site at http:\/\/127\.0\.0\.1:8585; since start 3(\.0)? MiB from peers, 1(\.0)? MiB to peers/);
  assert.match((await page.textContent('dd.process')) ?? '', /80(\.0)? MiB RSS, up \d+ min, arm64, Raspberry Pi 4 Model B/);

  assert.equal(await page.evaluate(() => window.__sameDocument === true), true, 'no reload: the same document all along');
  assert.deepEqual(pageErrors, [], 'no script errors or CSP refusals');

  // Logout closes the stream; the page is back at the login form.
  await page.click('button.logout');
  await page.waitForSelector('#token');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { durable, openGcDb } from '../../src/groundcontrol/db/db.ts';
import { putSatellite, putStatus } from '../../src/groundcontrol/db/indexes.ts';
import { startGroundControl, TEST_ADMIN_TOKEN } from '../../test/helpers/groundcontrol.ts';
import { makeTempDir } from '../../test/helpers/tmp.ts';
import { launchChromium } from '../../test/helpers/chromium.ts';

declare const document: any;

const N = 5000;

test(`console at ${N} satellites: first page renders without loading the fleet; page weight and time to first render`, async (t) => {
  // The fleet is written straight into Ground Control's LMDB (what registration and reports would
  // leave), then Ground Control starts on it.
  const dataDir = await makeTempDir(t, 'hs-gc-console-scale-');
  const db = openGcDb(join(dataDir, 'db'));
  const at = new Date().toISOString();
  await durable(db, () => {
    for (let i = 0; i < N; i++) {
      const id = `sat-${String(i).padStart(5, '0')}`;
      putSatellite(db, { id, name: id, site: `site-${i % 100}`, createdAt: at, registeredAt: at, hostname: id, version: '0.1.0', mqttPasswordHash: null });
      const failed = i % 50 === 0 ? 1 : 0;
      putStatus(db, id, {
        presence: { online: i % 10 !== 0, at, receivedAt: at },
        state: {
          seq: 1, at, version: '0.1.0', desiredGeneration: null, appliedGeneration: null,
          images: failed ? [{ repository: 'apps/web', reference: 'v1', status: 'failed', code: 'UPSTREAM_NOT_FOUND', reason: 'manifest unknown' }] : [{ repository: 'apps/web', reference: 'v1', status: 'ok', digest: `sha256:${'a'.repeat(64)}` }],
          imageCounts: { ok: 1 - failed, pending: 0, failed }, disk: { blobs: 3, bytes: 50_000_000 }, lastSync: null, upstream: { reachable: true, lastError: null },
        },
        lastSeenAt: at, events: { count: 0, last: [] }, errors: { count: 0, last: null },
      });
    }
  });
  await db.root.close();
  const gc = await startGroundControl(t, { dataDir, readyTimeoutMs: 120_000 });

  const browser = await launchChromium(t);
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
  const login = await context.newPage();
  await login.goto(`${gc.url}/console/`);
  await login.fill('#token', TEST_ADMIN_TOKEN);
  // Warm (assets built in memory from source on first request), then measure a cold load in a new
  // browser context with the session only (nothing cached).
  await login.click('button[type=submit]');
  await login.waitForSelector('table.fleet tbody tr');
  const fresh = await browser.newContext({ viewport: { width: 1360, height: 900 }, storageState: await context.storageState() });
  const page = await fresh.newPage();
  const started = Date.now();
  await page.goto(`${gc.url}/console/`);
  await page.waitForFunction(() => document.querySelectorAll('table.fleet tbody tr').length === 100, undefined, { timeout: 60_000 });
  const firstRenderMs = Date.now() - started;
  // Bytes of every response so far (the page, app.js, app.css, session, groups, the first status page).
  const firstBytes: number = await page.evaluate(() =>
    [...(globalThis as any).performance.getEntriesByType('navigation'), ...(globalThis as any).performance.getEntriesByType('resource')].reduce((n: number, e: any) => n + e.decodedBodySize, 0),
  );
  const statusBytes: number = await page.evaluate(() =>
    (globalThis as any).performance.getEntriesByType('resource').filter((e: any) => e.name.includes('/api/v1/status')).map((e: any) => e.decodedBodySize)[0] ?? 0,
  );
  assert.equal(await page.textContent('button[data-count="satellites"] .n'), String(N));
  assert.equal(await page.textContent('button[data-count="failed"] .n'), String(N / 50));
  assert.equal(await page.textContent('button[data-count="offline"] .n'), String(N / 10));
  // Paging walks the fleet one page at a time; the last page of 5,000 at 1,000 a page.
  await page.selectOption('.filters select >> nth=2', '1000');
  await page.waitForFunction(() => document.querySelectorAll('table.fleet tbody tr').length === 1000, undefined, { timeout: 60_000 });
  for (let p = 2; p <= 5; p++) {
    await page.click('text=Next →');
    await page.waitForFunction((n) => document.querySelector('.pager span')?.textContent?.startsWith(`page ${n}`), p, { timeout: 60_000 });
  }
  await page.waitForFunction(() => document.querySelector('table.fleet tbody tr:last-child')?.getAttribute('data-id') === 'sat-04999', undefined, { timeout: 60_000 });
  assert.equal(await page.isDisabled('text=Next →'), true);
  console.log(`console at ${N} satellites: first render ${firstRenderMs} ms, ${(firstBytes / 1024).toFixed(1)} KiB loaded (page, bundle, session, groups, first status page of 100 rows: ${(statusBytes / 1024).toFixed(1)} KiB)`);
  // Generous: the machine is shared; the point is that nothing proportional to the fleet is loaded.
  assert.ok(firstRenderMs < 20_000, `first render took ${firstRenderMs} ms`);
  assert.ok(firstBytes < 400 * 1024, `${firstBytes} bytes for the first page`);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { launchChromium } from '../helpers/chromium.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { eventually, startGroundControl, TEST_ADMIN_TOKEN } from '../helpers/groundcontrol.ts';
import { startSatellite } from '../helpers/satellite.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { makeTempDir } from '../helpers/tmp.ts';

// The callbacks given to page.evaluate/waitForFunction run in the page (tsc has no DOM lib here).
declare const document: any;

interface Row {
  id: string;
  state: { images: { ok: number; pending: number; failed: number } } | null;
}

test('console in a real browser: login, the fleet with a failing satellite, filter by site, satellite page, events, CSRF refused, logout', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  await makeImage(layout, { tag: 'w1', seed: 'console-web-1', layerSizes: [60_000] });
  await skopeoCopy(`oci:${layout}:w1`, `docker://${upstream.host}/apps/web:v1`);
  const gc = await startGroundControl(t, { config: { upstream: { url: upstream.url } } });

  // Satellites registered through the real API at three sites; one real satellite at munich.
  const ids: Record<string, string> = {};
  for (const [name, site] of [['shop-1', 'berlin'], ['shop-2', 'berlin'], ['depot-1', 'hamburg'], ['edge-1', 'munich']] as const) {
    const created = await gc.api('POST', '/api/v1/satellites', { name, site });
    assert.equal(created.status, 201);
    ids[name] = created.body.satellite.id;
    if (name === 'edge-1') ids.token = created.body.registration.token;
  }
  const group = { name: 'edge', images: [{ repository: 'apps/web', tags: ['v1'] }, { repository: 'apps/missing', tags: ['v1'] }] };
  assert.equal((await gc.api('PUT', '/api/v1/groups/edge', group)).status, 201);
  assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'edge', site: 'munich' })).status, 201);
  await startSatellite(t, {
    config: {
      control: { groundControlUrl: gc.url, registrationToken: ids.token, reportIntervalSeconds: 3600 },
      sync: { intervalSeconds: 3600, retry: { baseMs: 50, maxMs: 500 } },
    },
  });
  const edge = ids['edge-1'] as string;
  await eventually(async () => {
    const rows = (await gc.api<{ satellites: Row[] }>('GET', '/api/v1/status?site=munich')).body.satellites;
    const r = rows.find((s) => s.id === edge);
    return r?.state && r.state.images.failed === 1 && r.state.images.ok === 1 ? r : undefined;
  }, 60_000, 'the real satellite reported one ok and one failed image');

  const shots = process.env.CONSOLE_SCREENSHOT_DIR ?? (await makeTempDir(t, 'hs-console-shots-'));
  await mkdir(shots, { recursive: true });
  const browser = await launchChromium(t);
  const context = await browser.newContext({ viewport: { width: 1360, height: 760 } });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));

  // Login: a wrong token is refused; the right one opens a session with the cookie's flags.
  await page.goto(`${gc.url}/console/`);
  await page.fill('#token', 'hsa_wrong-token-0000000000000000');
  await page.click('button[type=submit]');
  await page.waitForSelector('text=UNAUTHORIZED');
  await page.screenshot({ path: join(shots, 'console-login.png') });
  await page.fill('#token', TEST_ADMIN_TOKEN);
  await page.click('button[type=submit]');
  await page.waitForSelector('table.fleet tbody tr');
  const [cookie] = (await context.cookies()).filter((c) => c.name === 'gc_session');
  assert.ok(cookie, 'session cookie set');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(cookie.path, '/');
  assert.equal(await page.evaluate(() => document.cookie), '', 'the page cannot read the session cookie');

  // Overview: every satellite, the failing one marked with its failed image; counts.
  await page.waitForFunction((id) => document.querySelector(`tr[data-id="${id}"].row-failed`) !== null, edge, { timeout: 20_000 });
  const rowIds = await page.$$eval('table.fleet tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-id')));
  assert.deepEqual([...rowIds].sort(), Object.entries(ids).filter(([k]) => k !== 'token').map(([, v]) => v).sort());
  const edgeRow = await page.textContent(`tr[data-id="${edge}"]`);
  assert.match(edgeRow ?? '', /munich/);
  assert.match(edgeRow ?? '', /online/);
  assert.match(edgeRow ?? '', /1\/0\/1/);
  assert.match(edgeRow ?? '', /apps\/missing:v1/);
  const count = async (k: string) => page.textContent(`button[data-count="${k}"] .n`);
  assert.equal(await count('failed'), '1');
  assert.equal(await count('satellites'), '4');
  assert.equal(await count('online'), '1');
  assert.equal(await count('unknown'), '3');
  await page.screenshot({ path: join(shots, 'console-overview.png'), fullPage: true });

  // Filter by site (the paged, filtered status API): only berlin's two.
  await page.fill('input[name=site]', 'berlin');
  await page.press('input[name=site]', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('table.fleet tbody tr').length === 2, undefined, { timeout: 10_000 });
  const berlin = await page.$$eval('table.fleet tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-id')).sort());
  assert.deepEqual(berlin, [ids['shop-1'], ids['shop-2']].sort());
  // State filter from the "failed" card, site cleared.
  await page.fill('input[name=site]', '');
  await page.press('input[name=site]', 'Enter');
  await page.click('button[data-count="failed"]');
  await page.waitForFunction(() => document.querySelectorAll('table.fleet tbody tr').length === 1, undefined, { timeout: 10_000 });

  // Satellite page: each image with its state, the failure's reason, recent events.
  await page.click(`a[href="#/satellite/${edge}"]`);
  await page.waitForSelector('table.images-table tr.img-failed');
  const failedImage = await page.textContent('table.images-table tr.img-failed');
  assert.match(failedImage ?? '', /apps\/missing:v1/);
  assert.match(failedImage ?? '', /failed/);
  assert.match(await page.textContent('table.images-table tr.img-failed td.reason') ?? '', /\S{5,}/, 'a reason is shown');
  assert.match(await page.textContent('table.images-table tr.img-ok') ?? '', /apps\/web:v1/);
  await page.waitForSelector('table.events tr.image\\.failed');
  await page.screenshot({ path: join(shots, 'console-satellite.png'), fullPage: true });

  // Event and audit log: the changes above, by whom.
  await page.click('a[href="#/events"]');
  await page.waitForSelector('table.events tr.ev-audit');
  const audit = await page.textContent('table.events');
  assert.match(audit ?? '', /PUT \/api\/v1\/groups\/edge/);
  assert.match(audit ?? '', /admin token [0-9a-f]{12}/);
  assert.match(audit ?? '', /logged in/);
  await page.screenshot({ path: join(shots, 'console-events.png'), fullPage: true });

  // A page on another origin (same site: 127.0.0.1, so the browser sends the cookie) posts
  // without the CSRF token: refused, nothing created.
  const tokensBefore = (await gc.api('GET', '/api/v1/tokens')).body.tokens.length;
  const evil = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<!doctype html><script>
      fetch(${JSON.stringify(`${gc.url}/api/v1/tokens`)}, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body: '{"site":"evil"}' })
        .finally(() => { document.title = 'sent'; });
    </script>`);
  });
  evil.listen(0, '127.0.0.1');
  await once(evil, 'listening');
  t.after(() => evil.close());
  const attacker = await context.newPage();
  const logMark = gc.logs().split('\n').length;
  await attacker.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
  await attacker.waitForFunction(() => document.title === 'sent', undefined, { timeout: 10_000 });
  await gc.waitForLog(/"code":"CSRF_REJECTED","status":403,"method":"POST","path":"\/api\/v1\/tokens"/, 10_000, logMark - 1);
  assert.equal((await gc.api('GET', '/api/v1/tokens')).body.tokens.length, tokensBefore, 'no token created');
  await attacker.close();

  // Without credentials the API answers 401.
  assert.equal(await page.evaluate(async () => (await fetch('/api/v1/status', { credentials: 'omit' })).status), 401);

  // Logout: back to the login form; the cookie is gone and its value no longer works.
  await page.click('button.logout');
  await page.waitForSelector('#token');
  assert.deepEqual((await context.cookies()).filter((c) => c.name === 'gc_session'), []);
  const stale = await fetch(`${gc.url}/api/v1/status`, { headers: { Cookie: `gc_session=${cookie.value}` } });
  assert.equal(stale.status, 401);
  await stale.text();
  assert.deepEqual(pageErrors, [], 'no script errors in the page');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { topic } from '../../src/protocol/index.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeImage } from '../helpers/fixtures.ts';
import { addAndRegister, connectSatellite, eventually, startGroundControl, TEST_ADMIN_TOKEN } from '../helpers/groundcontrol.ts';
import { startSatellite } from '../helpers/satellite.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { makeTempDir } from '../helpers/tmp.ts';

// The callbacks given to page.evaluate/waitForFunction run in the page (tsc has no DOM lib here).
declare const document: any;
declare const navigator: any;
declare const location: any;

interface Row {
  id: string;
  inSync: boolean;
  state: { images: { ok: number; pending: number; failed: number } } | null;
}

test('console management in a real browser: groups (API errors shown), assignment reach, the satellite applies it, commands and results, tokens shown once, stray pull added to a group, sorting across pages', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  await makeImage(layout, { tag: 'w1', seed: 'console-manage-1', layerSizes: [40_000] });
  await makeImage(layout, { tag: 'w2', seed: 'console-manage-2', layerSizes: [50_000] });
  await skopeoCopy(`oci:${layout}:w1`, `docker://${upstream.host}/apps/web:v1`);
  await skopeoCopy(`oci:${layout}:w2`, `docker://${upstream.host}/apps/tools:v2`);
  const gc = await startGroundControl(t, { config: { upstream: { url: upstream.url } } });

  // 60 never-seen satellites whose ids sort first ("aaa-…"), two at berlin, the real one at munich.
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) ids.push((await gc.api('POST', '/api/v1/satellites', { name: `aaa-${String(i).padStart(2, '0')}`, site: 'depot' })).body.satellite.id);
  for (const name of ['shop-1', 'shop-2']) ids.push((await gc.api('POST', '/api/v1/satellites', { name, site: 'berlin' })).body.satellite.id);
  const edgeCreated = await gc.api('POST', '/api/v1/satellites', { name: 'edge-1', site: 'munich' });
  const edge = edgeCreated.body.satellite.id as string;
  ids.push(edge);
  assert.equal((await gc.api('PUT', '/api/v1/groups/edge', { images: [{ repository: 'apps/web', tags: ['v1'] }] })).status, 201);
  assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'edge', site: 'munich' })).status, 201);
  await startSatellite(t, {
    config: {
      control: { groundControlUrl: gc.url, registrationToken: edgeCreated.body.registration.token, reportIntervalSeconds: 3600 },
      sync: { intervalSeconds: 3600, retry: { baseMs: 50, maxMs: 500 } },
    },
  });
  const edgeRow = async () => (await gc.api<{ satellites: Row[] }>('GET', '/api/v1/status?site=munich')).body.satellites.find((s) => s.id === edge);
  await eventually(async () => {
    const r = await edgeRow();
    return r?.inSync && r.state?.images.ok === 1 ? r : undefined;
  }, 60_000, 'the real satellite applied group edge');

  // A simulated satellite (MQTT) whose clients pulled an image outside its desired state.
  const sim = await addAndRegister(gc, 'kiosk-1', 'berlin');
  ids.push(sim.satelliteId);
  const simClient = await connectSatellite(t, gc.mqttUrl as string, sim);
  await simClient.publishAsync(topic(sim.satelliteId, 'presence'), JSON.stringify({ type: 'presence', satelliteId: sim.satelliteId, online: true, at: new Date().toISOString() }), { qos: 1, retain: true });
  await simClient.publishAsync(
    topic(sim.satelliteId, 'state'),
    JSON.stringify({
      type: 'state', satelliteId: sim.satelliteId, seq: 1, at: new Date().toISOString(), version: '0.1.0', desiredGeneration: null, appliedGeneration: null,
      images: [], disk: { blobs: 0, bytes: 0 }, lastSync: null, upstream: { reachable: null, lastError: null },
      strayPulls: [{ repository: 'apps/tools', reference: 'v2', pulls: 7, notFound: 0 }],
    }),
    { qos: 1 },
  );
  await eventually(async () => (await gc.api('GET', `/api/v1/satellites/${sim.satelliteId}`)).body.satellite.status?.state?.strayPulls?.length === 1, 10_000, 'stray pulls stored');

  const shots = process.env.CONSOLE_SCREENSHOT_DIR ?? (await makeTempDir(t, 'hs-console-shots-'));
  await mkdir(shots, { recursive: true });
  const browser = await launchChromium(t);
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: gc.url });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  await page.goto(`${gc.url}/console/`);
  await page.fill('#token', TEST_ADMIN_TOKEN);
  await page.click('button[type=submit]');
  await page.waitForSelector('table.fleet tbody tr');

  await t.test('overview: never-seen satellites are not counted as syncing; sorting spans every page', async () => {
    const count = (k: string) => page.textContent(`button[data-count="${k}"] .n`);
    await page.waitForFunction(() => document.querySelector('button[data-count="unknown"] .n')?.textContent === '62', undefined, { timeout: 10_000 });
    // 62 never seen (not syncing), edge-1 converged, kiosk-1 seen and not applied: syncing 1.
    await page.waitForFunction(() => document.querySelector('button[data-count="outOfSync"] .n')?.textContent === '1', undefined, { timeout: 10_000 });
    assert.equal(await count('inSync'), '1');
    assert.equal(await count('online'), '2');
    await page.selectOption('.filters select:not([name])', '50');
    await page.waitForFunction(() => document.querySelectorAll('table.fleet tbody tr').length === 50, undefined, { timeout: 10_000 });
    assert.equal(await page.$(`tr[data-id="${edge}"]`), null, 'edge-1 is not on the first page in id order');
    // Presence descending: the online satellites of the whole fleet first, not of this page.
    await page.click('th[data-sort="presence"]');
    await page.click('th[data-sort="presence"]');
    await page.waitForFunction(() => document.querySelector('table.fleet tbody tr')?.querySelector('.pill')?.textContent === 'online', undefined, { timeout: 10_000 });
    const top = await page.$$eval('table.fleet tbody tr', (trs) => trs.slice(0, 2).map((tr) => tr.getAttribute('data-id')).sort());
    assert.deepEqual(top, [edge, sim.satelliteId].sort());
    // Satellite descending (a new column sorts ascending first): the greatest id of the fleet heads
    // page 1; page 2 continues from row 51.
    await page.click('th[data-sort="id"]');
    await page.waitForSelector('th[data-sort="id"].sorted');
    await page.click('th[data-sort="id"]');
    const desc = [...ids].sort().reverse();
    await page.waitForFunction((first) => document.querySelector('table.fleet tbody tr')?.getAttribute('data-id') === first, desc[0], { timeout: 10_000 });
    await page.click('text=Next →');
    await page.waitForFunction((first) => document.querySelector('table.fleet tbody tr')?.getAttribute('data-id') === first, desc[50], { timeout: 10_000 });
    assert.equal(await page.$$eval('table.fleet tbody tr', (trs) => trs.length), ids.length - 50);
  });

  await t.test('groups: a bad image reference shows the API\'s message; fixed, saved, assigned with a reach preview; the satellite applies it', async () => {
    await page.click('header nav a[href="#/groups"]');
    await page.waitForSelector('table.groups-table tr[data-group="edge"]');
    await page.click('a[href="#/groups/new"]');
    await page.fill('input[name=name]', 'tools');
    await page.fill('input[name=repository-0]', 'Apps/Tools');
    await page.fill('input[name=tags-0]', 'v2');
    await page.click('button[type=submit]');
    await page.waitForSelector('.group-editor .error');
    const shown = await page.textContent('.group-editor .error');
    const direct = await gc.api('PUT', '/api/v1/groups/tools', { images: [{ repository: 'Apps/Tools', tags: ['v2'] }] });
    assert.equal(direct.status, 400);
    assert.equal(shown, `${direct.body.error.code}: ${direct.body.error.message}`, 'the API\'s own code and message');
    assert.match(shown ?? '', /invalid repository name Apps\/Tools/);
    await page.screenshot({ path: join(shots, 'console-group-error.png'), fullPage: true });

    await page.fill('input[name=repository-0]', 'apps/tools');
    await page.click('button[type=submit]');
    await page.waitForSelector('.assign-form');
    assert.equal(await page.evaluate(() => location.hash), '#/groups/tools');
    assert.deepEqual((await gc.api('GET', '/api/v1/groups/tools')).body.group.images, [{ repository: 'apps/tools', tags: ['v2'] }]);
    await page.waitForSelector('.reach[data-count="0"]');

    // Preview: berlin has shop-1, shop-2 and kiosk-1; munich has edge-1.
    await page.fill('input[name=assign-value]', 'berlin');
    await page.waitForSelector('.assignments .reach[data-count="3"]');
    assert.match(await page.textContent('.assignments .reach') ?? '', /kiosk-1.*shop-1.*shop-2|shop-1/);
    await page.fill('input[name=assign-value]', 'munich');
    await page.waitForSelector('.assignments .reach[data-count="1"]');
    assert.match(await page.textContent('.assignments .reach') ?? '', /1 satellite: edge-1/);
    await page.screenshot({ path: join(shots, 'console-group-edit.png'), fullPage: true });
    await page.click('.assign-form button[type=submit]');
    await page.waitForSelector('tr[data-assignment="site:munich"]');
    assert.match(await page.textContent('.assignments .saved') ?? '', /new desired state for 1 satellite/);
    await page.waitForSelector('.group-form .reach[data-count="1"]');

    // The real satellite gets the new desired state and downloads apps/tools:v2.
    await eventually(async () => {
      const r = await edgeRow();
      return r?.inSync && r.state?.images.ok === 2 ? r : undefined;
    }, 60_000, 'the real satellite applied group tools');
  });

  await t.test('commands: to a group (the satellite answers), to a site (queued: never seen), from the satellite page', async () => {
    await page.click('.group-editor .commands button[data-command="sync-now"]');
    await page.waitForSelector(`.commands-table tr.cmd-ok`, { timeout: 30_000 });
    assert.match(await page.textContent('.commands-table') ?? '', new RegExp(edge));
    await page.screenshot({ path: join(shots, 'console-group-commands.png'), fullPage: true });

    await page.click('a[href="#/groups"]');
    await page.fill('input[name=command-site]', 'depot');
    await page.click('.groups .commands button[data-command="gc"]');
    await page.waitForSelector('.command-results');
    assert.match(await page.textContent('.command-results') ?? '', /gc sent to 60 satellites \(first 10 shown\)/);
    assert.equal(await page.$$eval('.commands-table tr.cmd-queued', (trs) => trs.length), 10);

    await page.goto(`${gc.url}/console/#/satellite/${edge}`);
    await page.waitForSelector('.satellite .commands');
    await page.click('.satellite .commands button[data-command="report"]');
    await page.waitForSelector('.commands-table tr.cmd-ok', { timeout: 30_000 });
  });

  await t.test('stray pulls: one click adds the image to a group', async () => {
    await page.goto(`${gc.url}/console/#/satellite/${sim.satelliteId}`);
    await page.waitForSelector('tr[data-stray="apps/tools:v2"]');
    assert.equal(await page.$('.commands-table'), null, 'another satellite\'s page starts without the last one\'s command results');
    await page.selectOption('select[name=stray-group]', 'edge');
    await page.click('tr[data-stray="apps/tools:v2"] button.add-to-group');
    await page.waitForSelector('tr[data-stray="apps/tools:v2"] .saved');
    assert.deepEqual((await gc.api('GET', '/api/v1/groups/edge')).body.group.images, [{ repository: 'apps/web', tags: ['v1'] }, { repository: 'apps/tools', tags: ['v2'] }]);
    await page.screenshot({ path: join(shots, 'console-strays.png'), fullPage: true });
  });

  await t.test('tokens: created from the page, shown once with the install command line', async () => {
    await page.click('header nav a[href="#/tokens"]');
    await page.fill('.token-form input[name=site]', 'berlin');
    await page.click('.token-form button[type=submit]');
    await page.waitForSelector('.new-token .secret');
    const token = (await page.textContent('.new-token .secret')) ?? '';
    assert.match(token, /\S{20,}/);
    const line = await page.textContent('.install-command');
    assert.equal(line, `sh install.sh --ground-control ${gc.url} --token ${token} harbor-satellite-0.1.0-linux-arm64.tar.gz`);
    await page.click('.new-token button.copy >> nth=0');
    await page.waitForSelector('.new-token .copied:text("copied")');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token);
    await page.screenshot({ path: join(shots, 'console-tokens.png') });
    // The token works once: it registers a satellite.
    const reg = await gc.api('POST', '/api/v1/register', { token, hostname: 'from-console' }, null);
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    // Gone from the page after Done, and never in the list.
    await page.click('.new-token button.dismiss');
    await page.waitForSelector('.tokens-table');
    assert.equal((await page.content()).includes(token), false);
    await page.reload();
    await page.waitForSelector('.tokens-table');
    assert.equal((await page.content()).includes(token), false);
  });

  await t.test('audit: console changes are recorded with the admin token behind the session', async () => {
    const events = (await gc.api('GET', '/api/v1/events?kind=audit&limit=100')).body.events as Array<{ message: string; actor: string }>;
    for (const what of [/^group tools created/, /^group tools assigned to site munich/, /^command sync-now sent to group tools/, /^command gc sent to site depot \(60/, /^group edge updated/, /^registration token [0-9a-f]{12} created for site berlin/]) {
      const e = events.find((x) => what.test(x.message));
      assert.ok(e, `${what}: ${JSON.stringify(events.map((x) => x.message))}`);
      assert.match(e.actor, /^session [0-9a-f]+ \(admin token [0-9a-f]{12}\)$/);
    }
  });
  assert.deepEqual(pageErrors, [], 'no script errors in the page');
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { topic, type VerifyResult } from '../../src/protocol/index.ts';
import { launchChromium } from '../helpers/chromium.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { addAndRegister, connectSatellite, eventually, gcCli, startGroundControl, TEST_ADMIN_TOKEN } from '../helpers/groundcontrol.ts';
import { startSatellite } from '../helpers/satellite.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { blobFile } from '../sync/helpers.ts';

// The callbacks given to page.evaluate/waitForFunction run in the page (tsc has no DOM lib here).
declare const document: any;

interface Command {
  id: string;
  status: 'pending' | 'sent' | 'ok' | 'failed';
  result: VerifyResult | null;
  error: { code: string; message: string } | null;
}
interface Row {
  id: string;
  inSync: boolean;
  state: { images: { ok: number; pending: number; failed: number } } | null;
}

async function flipByte(file: string, at: number): Promise<void> {
  const fh = await open(file, 'r+');
  const one = Buffer.alloc(1);
  await fh.read(one, 0, 1, at);
  one[0] = one[0]! ^ 0xff;
  await fh.write(one, 0, 1, at);
  await fh.close();
}

test('verify from Ground Control: API, CLI and console (live, no polling) find a flipped byte; repair re-syncs; an older satellite\'s refusal fails the command', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const image = await makeImage(layout, { tag: 'v1', seed: 'verify-command', layerSizes: [300_000] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/apps/web:v1`);
  const gc = await startGroundControl(t, { config: { upstream: { url: upstream.url } } });
  const created = await gc.api('POST', '/api/v1/satellites', { name: 'edge-1', site: 'munich' });
  const id = created.body.satellite.id as string;
  await gc.api('PUT', '/api/v1/groups/edge', { images: [{ repository: 'apps/web', tags: ['v1'] }] });
  await gc.api('POST', '/api/v1/assignments', { group: 'edge', site: 'munich' });
  const satConfig = {
    control: { groundControlUrl: gc.url, registrationToken: created.body.registration.token, reportIntervalSeconds: 3600 },
    sync: { intervalSeconds: 3600, retry: { baseMs: 50, maxMs: 500 } },
  };
  let sat = await startSatellite(t, { config: satConfig });
  const row = async () => (await gc.api<{ satellites: Row[] }>('GET', '/api/v1/status?site=munich')).body.satellites.find((s) => s.id === id);
  const inSync = () => eventually(async () => {
    const r = await row();
    return r?.inSync && r.state?.images.ok === 1 ? r : undefined;
  }, 60_000, 'the satellite applied group edge');
  await inSync();

  const send = async (body: Record<string, unknown>) => {
    const res = await gc.api<{ command: Command }>('POST', `/api/v1/satellites/${id}/commands`, body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.command.id;
  };
  const answered = (cid: string) =>
    eventually(async () => {
      const c = (await gc.api<{ command: Command }>('GET', `/api/v1/satellites/${id}/commands/${cid}`)).body.command;
      return c.status === 'ok' || c.status === 'failed' ? c : undefined;
    }, 60_000, `command ${cid} answered`);

  // A whole store: config, layer and manifest blobs checked, nothing bad.
  const clean = await answered(await send({ name: 'verify' }));
  assert.equal(clean.status, 'ok', JSON.stringify(clean.error));
  assert.ok(clean.result!.blobsChecked >= 2, `blobsChecked ${clean.result!.blobsChecked}`);
  assert.deepEqual([clean.result!.corrupt, clean.result!.missing, clean.result!.imagesAffected, clean.result!.repaired], [0, 0, 0, 0]);

  // A flipped byte in the layer's file: 1 corrupt blob, the image it breaks named.
  const layerFile = blobFile(sat.dataDir, image.layerDigests[0]!);
  await flipByte(layerFile, 1000);
  const found = await answered(await send({ name: 'verify' }));
  assert.equal(found.status, 'ok');
  assert.equal(found.result!.corrupt, 1);
  assert.equal(found.result!.missing, 0);
  assert.equal(found.result!.imagesAffected, 1);
  assert.equal(found.result!.repaired, 0);
  assert.deepEqual(found.result!.images, ['apps/web:v1']);
  assert.deepEqual(found.result!.blobs, [{ digest: image.layerDigests[0], problem: 'corrupt' }]);

  // The CLI sends it too and prints the counts.
  const cli = gcCli(gc.url);
  const out = await cli('command', id, 'verify', '--wait', '60');
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /verified \d+ blob\(s\), \d+ bytes: 1 corrupt, 0 missing, 1 image\(s\) affected, 0 repaired\n\s+affected: apps\/web:v1/);
  assert.equal((await cli('command', id, 'gc', '--repair')).code, 2, '--repair goes with verify only');
  const badArgs = await gc.api('POST', `/api/v1/satellites/${id}/commands`, { name: 'gc', args: { repair: true } });
  assert.equal(badArgs.status, 400);

  await t.test('console: Verify shows the counts when the answer comes, from the live feed, without polling the result', async () => {
    const browser = await launchChromium(t);
    const page = await (await browser.newContext({ viewport: { width: 1360, height: 860 } })).newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    const resultGets: number[] = [];
    page.on('request', (req) => {
      if (req.method() === 'GET' && /\/api\/v1\/satellites\/[^/]+\/commands\/[^/?]+$/.test(new URL(req.url()).pathname)) resultGets.push(Date.now());
    });
    await page.goto(`${gc.url}/console/`);
    await page.fill('#token', TEST_ADMIN_TOKEN);
    await page.click('button[type=submit]');
    await page.waitForSelector('table.fleet tbody tr');
    await page.goto(`${gc.url}/console/#/satellite/${id}`);
    await page.waitForSelector('.satellite .commands button[data-command="verify"]');

    // The satellite is down: the command waits on the broker. A polling page would ask every 1.5 s.
    await sat.stop();
    await eventually(async () => ((await gc.api('GET', `/api/v1/satellites/${id}`)).body.satellite.status?.presence?.online === false ? true : undefined), 20_000, 'offline');
    // The live message about it going offline (at most one a second) has come and gone by then.
    await new Promise((r) => setTimeout(r, 2000));
    await page.click('.satellite .commands button[data-command="verify"]');
    await page.waitForSelector('.commands-table tr.cmd-queued');
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal(resultGets.length, 0, 'no request for the result while nothing changed and the stream is up');

    // Back online: it runs the queued verify; the answer marks the satellite changed, the page refetches.
    sat = await startSatellite(t, { dataDir: sat.dataDir, config: satConfig });
    await page.waitForSelector('.commands-table tr.cmd-ok', { timeout: 60_000 });
    const text = (await page.textContent('.commands-table tr.cmd-ok')) ?? '';
    assert.match(text, /verify/);
    assert.match(text, /\d+ blobs checked, 1 corrupt, 0 missing, 1 images affected \(apps\/web:v1\), 0 repaired/);
    assert.ok(resultGets.length >= 1 && resultGets.length <= 4, `result requests: ${resultGets.length} (refetches on live messages naming the satellite)`);

    // Verify and repair asks first; declined, nothing is sent.
    const before = resultGets.length;
    page.once('dialog', (d) => void d.dismiss());
    await page.click('.satellite .commands button[data-command="verify-repair"]');
    await new Promise((r) => setTimeout(r, 500));
    assert.match((await page.textContent('.command-results')) ?? '', /^verify sent/, 'still the first send');
    page.once('dialog', (d) => void d.accept());
    await page.click('.satellite .commands button[data-command="verify-repair"]');
    await page.waitForFunction(() => /verify \(repair\) sent/.test(document.querySelector('.command-results')?.textContent ?? ''));
    await page.waitForFunction(() => /1 repaired/.test(document.querySelector('.commands-table tr.cmd-ok')?.textContent ?? ''), undefined, { timeout: 60_000 });
    const repairedRow = (await page.textContent('.commands-table tr.cmd-ok')) ?? '';
    assert.match(repairedRow, /verify \(repair\)/);
    assert.match(repairedRow, /1 corrupt, 0 missing, 1 images affected \(apps\/web:v1\), 1 repaired/);
    assert.ok(resultGets.length - before <= 4, `result requests for the repair: ${resultGets.length - before}`);
    assert.deepEqual(pageErrors, []);
  });

  // Repaired: the blob is in quarantine, the image re-synced from the upstream, whole again.
  assert.equal((await readdir(join(sat.dataDir, 'quarantine'))).length, 1);
  await eventually(async () => ((await readFile(layerFile).catch(() => Buffer.alloc(0))).length > 0 && sha256(await readFile(layerFile)) === image.layerDigests[0] ? true : undefined), 60_000, 'the layer fetched again');
  await inSync();
  const after = await answered(await send({ name: 'verify' }));
  assert.equal(after.result!.corrupt, 0);

  // A satellite older than verify rejects the message (its schema lacks the name) with an event and
  // sends no result: Ground Control ends the command failed instead of "sent" forever.
  const old = await addAndRegister(gc, 'old-1', 'munich');
  const oldClient = await connectSatellite(t, gc.mqttUrl as string, old);
  const oldCmd = (await gc.api<{ command: Command }>('POST', `/api/v1/satellites/${old.satelliteId}/commands`, { name: 'verify' })).body.command.id;
  await oldClient.publishAsync(
    topic(old.satelliteId, 'events'),
    JSON.stringify({
      type: 'event', satelliteId: old.satelliteId, level: 'error', code: 'MESSAGE_INVALID', at: new Date().toISOString(),
      message: 'command rejected: invalid commands message:\n  /name: must be one of ["sync-now","gc","report"]',
    }),
    { qos: 1 },
  );
  const refused = await eventually(async () => {
    const c = (await gc.api<{ command: Command }>('GET', `/api/v1/satellites/${old.satelliteId}/commands/${oldCmd}`)).body.command;
    return c.status === 'failed' ? c : undefined;
  }, 10_000, 'the old satellite\'s refusal recorded');
  assert.equal(refused.error!.code, 'COMMAND_UNSUPPORTED');
  assert.match(refused.error!.message, /does not know verify \(upgrade it\)/);
});

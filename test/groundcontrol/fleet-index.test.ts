import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { open } from 'lmdb';
import { durable } from '../../src/groundcontrol/db/db.ts';
import { INDEX_VERSION, isInState, readCounts, satellitesAtSite, tokensOf, verifyIndexes } from '../../src/groundcontrol/db/indexes.ts';
import { revokeToken } from '../../src/groundcontrol/fleet/tokens.ts';
import { assign, unassign } from '../../src/groundcontrol/fleet/assignments.ts';
import { applyGroup, deleteGroup } from '../../src/groundcontrol/fleet/groups.ts';
import { register } from '../../src/groundcontrol/fleet/register.ts';
import { ingestMessage } from '../../src/groundcontrol/fleet/reports.ts';
import { listEvents } from '../../src/groundcontrol/fleet/events.ts';
import { createSatellite, createSatelliteToken, deleteSatellite, updateSatellite } from '../../src/groundcontrol/fleet/satellites.ts';
import { fleetStatus } from '../../src/groundcontrol/fleet/status.ts';
import { topic } from '../../src/protocol/index.ts';
import type { Teardown } from '../helpers/cleanup.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { testFleetContext } from '../helpers/fleet-context.ts';

const fleetContext = (t: Teardown, dir?: string) => testFleetContext(t, dir === undefined ? {} : { dir });

const stateReport = (id: string, seq: number, generation: number | null, peerUrl?: string, images: object[] = []) =>
  Buffer.from(
    JSON.stringify({
      type: 'state', satelliteId: id, seq, at: new Date().toISOString(), version: '0.1.0', desiredGeneration: generation, appliedGeneration: generation,
      images, disk: { blobs: 0, bytes: 0 }, lastSync: null, upstream: { reachable: null, lastError: null }, ...(peerUrl ? { peerUrl } : {}),
    }),
  );
const presence = (id: string, online: boolean) => Buffer.from(JSON.stringify({ type: 'presence', satelliteId: id, online, at: new Date().toISOString(), version: '0.1.0' }));
const desiredOf = (sent: string[]) => sent.filter((s) => s.endsWith('/desired')).map((s) => s.split('/').at(-2) as string).sort();

test('indexes match the records after every kind of write', async (t) => {
  const ctx = await fleetContext(t);
  const { db } = ctx;
  const consistent = (after: string) => assert.deepEqual(verifyIndexes(db), [], `indexes after ${after}`);

  const a1 = (await createSatellite(ctx, { name: 'a1', site: 'port' })).satellite.id;
  const a2 = (await createSatellite(ctx, { name: 'a2', site: 'port' })).satellite.id;
  const b1 = (await createSatellite(ctx, { name: 'b1', site: 'mine' })).satellite.id;
  const loose = await createSatellite(ctx, { name: 'loose' });
  consistent('create');
  assert.deepEqual(satellitesAtSite(db, 'port').sort(), [a1, a2].sort());
  // Never seen: "unknown", not syncing (out-of-sync counts only satellites that were seen).
  assert.deepEqual(readCounts(db), { satellites: 4, registered: 0, online: 0, offline: 0, unknown: 4, inSync: 0, outOfSync: 0, failed: 0 });

  await applyGroup(ctx, { name: 'web', images: [{ repository: 'library/nginx', tags: ['1'] }] });
  await applyGroup(ctx, { name: 'db', images: [{ repository: 'library/pg', tags: ['16'] }] });
  await assign(ctx, { group: 'web', site: 'port' });
  await assign(ctx, { group: 'db', satellite: b1 });
  await assign(ctx, { group: 'db', satellite: a1 });
  consistent('assign');
  assert.deepEqual(desiredOf(ctx.sent), [a1, a1, a2, b1].sort());

  // Register one through its token: registeredAt set, state cleared.
  await register(ctx, { token: loose.registration.token, hostname: 'loose-host' });
  consistent('register');
  assert.equal(readCounts(db).registered, 1);

  await ingestMessage(ctx, topic(a1, 'presence'), presence(a1, true));
  await ingestMessage(ctx, topic(a2, 'presence'), presence(a2, false));
  await ingestMessage(ctx, topic(a1, 'state'), stateReport(a1, 1, 1, 'http://127.0.0.1:8101'));
  await ingestMessage(ctx, topic(b1, 'state'), stateReport(b1, 1, 1, 'http://127.0.0.1:8201'));
  consistent('reports');
  // Seen (a2 offline, not applied): syncing; registered but never seen (loose): not syncing.
  assert.equal(isInState(db, a2, 'out-of-sync'), true);
  assert.equal(isInState(db, loose.satellite.id, 'out-of-sync'), false);
  assert.equal(isInState(db, loose.satellite.id, 'unknown'), true);
  // b1's peer URL changed its site's membership: a new generation, which it then applies.
  const generation = db.generations.get(b1)?.desired ?? null;
  assert.equal(generation, 2);
  await ingestMessage(ctx, topic(b1, 'state'), stateReport(b1, 2, generation, 'http://127.0.0.1:8201'));
  consistent('applied');
  const counts = readCounts(db);
  assert.equal(counts.online, 1);
  assert.equal(counts.offline, 1);
  assert.equal(counts.inSync, 1);
  assert.deepEqual(fleetStatus(ctx, { state: 'in-sync' }).satellites.map((s) => s.id), [b1]);

  // A failed image: counted, filed under state=failed, its reason on the row, logged as a transition.
  const failing = { repository: 'library/pg', reference: '16', status: 'failed', code: 'MANIFEST_UNKNOWN', reason: 'manifest unknown upstream' };
  await ingestMessage(ctx, topic(b1, 'state'), stateReport(b1, 3, generation, 'http://127.0.0.1:8201', [failing]));
  consistent('failed image');
  assert.equal(readCounts(db).failed, 1);
  const failedRows = fleetStatus(ctx, { state: 'failed' }).satellites;
  assert.deepEqual(failedRows.map((s) => s.id), [b1]);
  assert.deepEqual(failedRows[0]?.failures, [{ image: 'library/pg:16', code: 'MANIFEST_UNKNOWN', reason: 'manifest unknown upstream' }]);
  assert.deepEqual(failedRows[0]?.state?.images, { ok: 0, pending: 0, failed: 1 });
  await ingestMessage(ctx, topic(b1, 'state'), stateReport(b1, 4, generation, 'http://127.0.0.1:8201', [{ ...failing, status: 'ok', code: undefined, reason: undefined }]));
  consistent('recovered image');
  assert.equal(readCounts(db).failed, 0);
  const b1Log = listEvents(db, { satelliteId: b1 }).events.map((e) => `${e.action} ${e.message}`);
  assert.deepEqual(b1Log, [`image.recovered library/pg:16 recovered`, `image.failed library/pg:16 failed (MANIFEST_UNKNOWN): manifest unknown upstream`]);
  assert.deepEqual(listEvents(db, { satelliteId: a2 }).events.map((e) => e.action), ['satellite.offline']);

  // Re-registration clears the state report: the peer URL (and membership) goes with it.
  const again = await createSatelliteToken(ctx, a1);
  await register(ctx, { token: again.token });
  consistent('re-register');
  const spare = await createSatelliteToken(ctx, a2);
  assert.equal(tokensOf(db, a2).length, 2);
  assert.equal(await durable(db, () => revokeToken(db, spare.record.id)), true);
  assert.equal(tokensOf(db, a2).length, 1);
  consistent('token revoke');

  await ingestMessage(ctx, topic(a1, 'state'), stateReport(a1, 1, 2, 'http://127.0.0.1:8102'));
  await updateSatellite(ctx, a1, { site: 'mine' });
  consistent('move');
  await updateSatellite(ctx, a2, { site: null });
  consistent('move to no site');
  await unassign(ctx, { group: 'web', site: 'port' });
  consistent('unassign');
  await deleteGroup(ctx, 'db');
  consistent('group delete');
  await deleteSatellite(ctx, b1);
  consistent('satellite delete');
  assert.equal(readCounts(db).satellites, 3);
  assert.deepEqual(satellitesAtSite(db, 'mine'), [a1]);
});

test('a peer URL change reconciles only that site, reading only its members; an unchanged one sends nothing', async (t) => {
  const ctx = await fleetContext(t);
  const { db } = ctx;
  const ids: Record<string, string[]> = { port: [], mine: [] };
  for (const site of ['port', 'mine']) for (let i = 0; i < 60; i++) ids[site]!.push((await createSatellite(ctx, { name: `${site}-${i}`, site })).satellite.id);
  await applyGroup(ctx, { name: 'web', images: [{ repository: 'library/nginx', tags: ['1'] }] });
  await assign(ctx, { group: 'web', site: 'port' });
  await assign(ctx, { group: 'web', site: 'mine' });
  ctx.sent.length = 0;

  // Count record reads while one satellite at "port" reports a peer URL.
  const reads = { satellites: 0, status: 0, desired: 0 };
  for (const name of ['satellites', 'status', 'desired'] as const) {
    const d = db[name] as { get: (k: string) => unknown };
    const get = d.get.bind(d);
    d.get = (k: string) => {
      reads[name]++;
      return get(k);
    };
  }
  const reporter = ids.port![7]!;
  await ingestMessage(ctx, topic(reporter, 'state'), stateReport(reporter, 1, 1, 'http://127.0.0.1:8107'));
  assert.deepEqual(desiredOf(ctx.sent), [...ids.port!].sort(), 'every member of the site, and only them, got the new membership');
  // A few reads per member of the affected site, none per satellite of the other site.
  assert.ok(reads.satellites <= 2 * 60 + 5, `satellite reads ${reads.satellites}`);
  assert.ok(reads.status <= 5, `status reads ${reads.status}`);
  assert.ok(reads.desired <= 60 + 5, `desired reads ${reads.desired} (publishing)`);
  const { secret, ...published } = db.desired.get(reporter)?.state.site ?? {};
  assert.deepEqual(published, { name: 'port', members: [{ id: reporter, url: 'http://127.0.0.1:8107' }] });
  assert.ok(secret, 'the member gets the site secret');
  const other = ids.port!.find((id) => id !== reporter) as string;
  assert.equal(db.desired.get(other)?.state.site?.secret, undefined, 'a non-member gets the list, not the secret');

  ctx.sent.length = 0;
  await ingestMessage(ctx, topic(reporter, 'state'), stateReport(reporter, 2, 1, 'http://127.0.0.1:8107'));
  assert.deepEqual(ctx.sent, [], 'same peer URL: no membership sent');
  assert.deepEqual(verifyIndexes(db), []);
});

test('a database written before the indexes gets them built once at open', async (t) => {
  const dataDir = await makeTempDir(t, 'hs-gc-index-old-');
  const path = join(dataDir, 'db');
  // What an older Ground Control left: records only, no index databases, no index version.
  const old = open({ path, compression: false, maxDbs: 32 });
  const satellites = old.openDB({ name: 'satellites' });
  const status = old.openDB({ name: 'status' });
  const desired = old.openDB({ name: 'desired' });
  const siteAssignments = old.openDB({ name: 'site-assignments' });
  const satelliteAssignments = old.openDB({ name: 'satellite-assignments' });
  const groups = old.openDB({ name: 'groups' });
  const at = new Date().toISOString();
  const sat = (id: string, site: string | null) => ({ id, name: id, site, createdAt: at, registeredAt: at, hostname: null, version: null, mqttPasswordHash: null });
  await old.transaction(() => {
    satellites.put('s-1', sat('s-1', 'port'));
    satellites.put('s-2', sat('s-2', 'port'));
    satellites.put('s-3', sat('s-3', null));
    status.put('s-1', {
      presence: { online: true, at, receivedAt: at },
      state: { seq: 1, at, version: '1', desiredGeneration: 3, appliedGeneration: 3, peerUrl: 'http://127.0.0.1:8101', images: [], imageCounts: { ok: 0, pending: 0, failed: 0 }, disk: { blobs: 0, bytes: 0 }, lastSync: null, upstream: { reachable: null, lastError: null } },
      lastSeenAt: at, events: { count: 0, last: [] }, errors: { count: 0, last: null },
    });
    desired.put('s-1', { generation: 3, contentHash: 'h1', state: { generation: 3, upstream: { url: 'http://127.0.0.1:9' }, images: [] }, publishedAt: at });
    groups.put('web', { name: 'web', images: [], createdAt: at, updatedAt: at });
    siteAssignments.put(['web', 'port'], at);
    satelliteAssignments.put(['web', 's-3'], at);
  });
  await old.close();

  const ctx = await fleetContext(t, dataDir);
  assert.deepEqual(verifyIndexes(ctx.db), [], 'built from the records');
  assert.deepEqual(readCounts(ctx.db), { satellites: 3, registered: 3, online: 1, offline: 0, unknown: 2, inSync: 1, outOfSync: 0, failed: 0 });
  assert.deepEqual(satellitesAtSite(ctx.db, 'port'), ['s-1', 's-2']);
  assert.deepEqual(ctx.db.sitePeers.get(['port', 's-1']), 'http://127.0.0.1:8101');
  const online = fleetStatus(ctx, { state: 'online' });
  assert.deepEqual(online.satellites.map((s) => s.id), ['s-1']);
  const web = fleetStatus(ctx, { group: 'web' });
  assert.deepEqual(web.satellites.map((s) => s.id), ['s-1', 's-2', 's-3']);
  // Once built, opening again does not rebuild (the version is stored).
  assert.equal(ctx.db.meta.get('index-version'), INDEX_VERSION);
});

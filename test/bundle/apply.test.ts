import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { startSatellite } from '../helpers/satellite.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { eventually, startGroundControl, type GroundControl } from '../helpers/groundcontrol.ts';
import { externalBrokerConfig, startMosquittoForGroundControl } from '../helpers/mosquitto.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { hostPlatform, makeLayer, writeImage } from '../helpers/fixtures.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { signContents } from '../../src/bundle/signature.ts';
import { keyIdOf } from '../../src/lib/ed25519.ts';
import { gcBundleCli, offlineConfig, satelliteCli, satelliteRun } from './helpers.ts';

const GC_USER = { username: 'groundcontrol', password: 'gc-broker-password-for-bundle-apply' };

interface Outcome {
  generation: number | null;
  status: string;
  reason?: string;
}
interface SyncView {
  desiredGeneration: number | null;
  appliedGeneration: number | null;
  appliedFrom: string | null;
}

async function syncStatus(url: string): Promise<SyncView> {
  const res = await fetch(`${url}/_satellite/status`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { sync: SyncView }).sync;
}

/** Upstream with apps/app:v1 and :v2; Ground Control (mosquitto as its broker) with satellite `ship-3` in group edge. */
async function fleet(t: Parameters<typeof makeTempDir>[0]) {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-apply-layout-');
  const platform = hostPlatform();
  const base = await makeLayer('apply-base', 300_000, { dir: layout });
  for (const v of ['v1', 'v2']) {
    await writeImage(layout, { tag: v, layers: [base, await makeLayer(`apply-${v}`, 40_000, { dir: layout })], platform });
    await skopeoCopy(`oci:${layout}:${v}`, `docker://${upstream.host}/apps/app:${v}`);
  }
  const mosq = await startMosquittoForGroundControl(t, GC_USER);
  const gc = await startGroundControl(t, { config: { upstream: { url: upstream.url }, broker: externalBrokerConfig(mosq, GC_USER) } });
  await gc.waitForLog(/"msg":"broker connected"/);
  const created = await gc.api<{ satellite: { id: string }; registration: { token: string } }>('POST', '/api/v1/satellites', { name: 'ship-3' });
  assert.equal(created.status, 201);
  const id = created.body.satellite.id;
  const group = (tags: string[]) => ({ name: 'edge', images: [{ repository: 'apps/app', tags }] });
  assert.equal((await gc.api('PUT', '/api/v1/groups/edge', group(['v1']))).status, 201);
  assert.ok((await gc.api('POST', '/api/v1/assignments', { group: 'edge', satellite: id })).status < 300);
  const dir = await makeTempDir(t, 'hs-apply-sticks-');
  const bundle = async (name: string) => {
    const made = await gcBundleCli(gc.configFile, ['create', '--satellite', id, '-o', join(dir, name)]);
    assert.equal(made.code, 0, made.stderr);
    return { dir: join(dir, name), generation: (JSON.parse(made.stdout) as { generation: number }).generation };
  };
  const g1 = await bundle('g1');
  assert.ok((await gc.api('PUT', '/api/v1/groups/edge', group(['v1', 'v2']))).status < 300);
  const g2 = await bundle('g2');
  assert.equal(g2.generation, g1.generation + 1);
  const keyRes = await gcBundleCli(gc.configFile, ['key']);
  const keyFile = join(dir, 'gc-bundle.pub');
  await writeFile(keyFile, keyRes.stdout);
  return { upstream, gc, id, token: created.body.registration.token, g1, g2, keyFile, keyPem: keyRes.stdout };
}

async function statusRow(gc: GroundControl, id: string) {
  return (await gc.api<{ satellites: Array<{ id: string; online: boolean; appliedGeneration: number | null; desiredGeneration: number | null }> }>('GET', '/api/v1/status')).body.satellites.find((s) => s.id === id);
}

test('a bundle applies its generation like a sync: status and Ground Control\'s reports show it; never rolled back; unsigned desired states ignored', async (t) => {
  const f = await fleet(t);
  await f.upstream.stop(); // the site has no link to the upstream

  // 1. A satellite with no upstream and no control: first start from a signed bundle (offline import with the CLI).
  const data = await makeTempDir(t, 'hs-apply-offline-');
  const cfg = await offlineConfig(t, data, { sync: { bundleKeyFile: f.keyFile, requireSignedBundles: true } });
  const first = await satelliteCli(cfg, ['import', f.g1.dir]);
  assert.equal(first.code, 0, first.stderr);
  assert.deepEqual((JSON.parse(first.stdout) as { desired: Outcome }).desired, { generation: f.g1.generation, status: 'applied' });
  const sat = await startSatellite(t, { dataDir: data, config: { sync: { bundleKeyFile: f.keyFile, requireSignedBundles: true, intervalSeconds: 3600 } } });
  const s1 = await syncStatus(sat.url);
  assert.deepEqual([s1.desiredGeneration, s1.appliedGeneration, s1.appliedFrom], [f.g1.generation, f.g1.generation, 'bundle']);

  // 2. A newer bundle into the running satellite: adopted and applied; `satellite status` says where it came from.
  const second = await satelliteCli(sat.configFile, ['import', f.g2.dir]);
  assert.equal(second.code, 0, second.stderr);
  assert.deepEqual((JSON.parse(second.stdout) as { desired: Outcome }).desired, { generation: f.g2.generation, status: 'applied' });
  const s2 = await syncStatus(sat.url);
  assert.deepEqual([s2.desiredGeneration, s2.appliedGeneration, s2.appliedFrom], [f.g2.generation, f.g2.generation, 'bundle']);
  const shown = await satelliteRun(sat.configFile, ['status']);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, new RegExp(`applied ${f.g2.generation} \\(from a bundle\\) / desired ${f.g2.generation}`));

  // 3. The older bundle again: its blobs are there, the desired state is not rolled back.
  const older = await satelliteCli(sat.configFile, ['import', f.g1.dir]);
  assert.equal(older.code, 0, older.stderr);
  const o = (JSON.parse(older.stdout) as { desired: Outcome }).desired;
  assert.equal(o.status, 'older');
  const s3 = await syncStatus(sat.url);
  assert.deepEqual([s3.desiredGeneration, s3.appliedGeneration], [f.g2.generation, f.g2.generation]);
  // The sync run started on the adopted state found no upstream: it keeps what the bundle applied.
  await sat.waitForLog(/"msg":"sync finished"/);
  assert.equal((await syncStatus(sat.url)).appliedGeneration, f.g2.generation);

  // 4. The same bundle without bundle.sig (signatures not required): images imported, its desired state ignored.
  const unsigned = join(await makeTempDir(t, 'hs-apply-unsigned-'), 'stick');
  await cp(f.g2.dir, unsigned, { recursive: true });
  await rm(join(unsigned, 'bundle.sig'));
  const dataU = await makeTempDir(t, 'hs-apply-u-');
  const res = await satelliteCli(await offlineConfig(t, dataU), ['import', unsigned]);
  assert.equal(res.code, 0, res.stderr);
  const ru = JSON.parse(res.stdout) as { desired: Outcome; images: Array<{ status: string }> };
  assert.equal(ru.desired.status, 'ignored');
  assert.deepEqual(ru.images.map((i) => i.status), ['imported', 'imported']);
  const satU = await startSatellite(t, { dataDir: dataU });
  const su = await syncStatus(satU.url);
  assert.deepEqual([su.desiredGeneration, su.appliedGeneration], [null, null]);

  // 5. A registered satellite (control over mosquitto) that cannot reach the upstream: nothing applied
  //    until the stick; then its next state report carries the generation.
  const reg = await startSatellite(t, {
    config: { control: { groundControlUrl: f.gc.url, registrationToken: f.token, reportIntervalSeconds: 3600 }, sync: { requireSignedBundles: true, intervalSeconds: 3600, retry: { baseMs: 50, maxMs: 200 } } },
  });
  await reg.waitForLog(/"msg":"registered with Ground Control"/, 20_000);
  await eventually(async () => ((await statusRow(f.gc, f.id))?.desiredGeneration === f.g2.generation ? true : undefined), 20_000, 'desired state received');
  await reg.waitForLog(/"msg":"sync finished"/, 20_000);
  assert.equal((await syncStatus(reg.url)).appliedGeneration, null, 'the upstream is down: nothing applied yet');
  const imported = await satelliteCli(reg.configFile, ['import', f.g2.dir]);
  assert.equal(imported.code, 0, imported.stderr);
  assert.deepEqual((JSON.parse(imported.stdout) as { desired: Outcome }).desired, { generation: f.g2.generation, status: 'applied' });
  const row = await eventually(async () => {
    const r = await statusRow(f.gc, f.id);
    return r?.appliedGeneration === f.g2.generation ? r : undefined;
  }, 20_000, 'Ground Control hears the applied generation');
  assert.equal(row.online, true);
  assert.equal((await syncStatus(reg.url)).appliedFrom, 'bundle');
});

test('Ground Control\'s bundle key travels in the desired state: a rotation reaches the satellite; a bundle cannot bring its own key', async (t) => {
  const f = await fleet(t);
  const sat = await startSatellite(t, {
    config: { control: { groundControlUrl: f.gc.url, registrationToken: f.token, reportIntervalSeconds: 3600 }, sync: { requireSignedBundles: true, intervalSeconds: 3600 } },
  });
  await sat.waitForLog(/"msg":"registered with Ground Control"/, 20_000);
  await sat.waitForLog(/"msg":"desired state accepted"/, 20_000);
  // The key from registration is gone from identity.json: the desired state's key verifies the bundle.
  const idFile = join(sat.dataDir, 'identity.json');
  const identity = JSON.parse(await readFile(idFile, 'utf8')) as { bundleKey?: string };
  assert.equal(identity.bundleKey, f.keyPem);
  await writeFile(idFile, JSON.stringify({ ...identity, bundleKey: undefined }), { mode: 0o600 });
  const ok = await satelliteCli(sat.configFile, ['import', f.g2.dir]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual((JSON.parse(ok.stdout) as { bundleSignature: unknown }).bundleSignature, { status: 'verified', keyId: keyIdOf(f.keyPem) });

  // A bundle signed by Ground Control's key whose desired state names another key (and a newer
  // generation), into a satellite that trusts Ground Control's key by config: the state is adopted,
  // the key is not.
  const rogue = generateKeyPairSync('ed25519');
  const roguePem = rogue.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const gcPrivate = createPrivateKey(await readFile(join(f.gc.dataDir, 'bundle-signing.key'), 'utf8'));
  const crafted = join(await makeTempDir(t, 'hs-apply-crafted-'), 'stick');
  await cp(f.g2.dir, crafted, { recursive: true });
  const list = JSON.parse(await readFile(join(crafted, 'bundle.json'), 'utf8')) as { desired: { generation: number; bundleKeys?: string[] } };
  assert.deepEqual(list.desired.bundleKeys, [f.keyPem], "Ground Control's stored desired state carries its key");
  list.desired.generation += 10;
  list.desired.bundleKeys = [roguePem];
  const bytes = Buffer.from(JSON.stringify(list, null, 1));
  await writeFile(join(crafted, 'bundle.json'), bytes);
  await writeFile(join(crafted, 'bundle.sig'), signContents(bytes, { keyId: keyIdOf(f.keyPem), privateKey: gcPrivate }));
  const offline = await offlineConfig(t, await makeTempDir(t, 'hs-apply-keyfile-'), { sync: { bundleKeyFile: f.keyFile, requireSignedBundles: true } });
  const adopted = await satelliteCli(offline, ['import', crafted]);
  assert.equal(adopted.code, 0, adopted.stderr);
  assert.deepEqual((JSON.parse(adopted.stdout) as { desired: Outcome }).desired, { generation: f.g2.generation + 10, status: 'applied' });
  const byRogue = join(await makeTempDir(t, 'hs-apply-rogue-'), 'stick');
  await cp(f.g2.dir, byRogue, { recursive: true });
  await writeFile(join(byRogue, 'bundle.sig'), signContents(await readFile(join(byRogue, 'bundle.json')), { keyId: keyIdOf(roguePem), privateKey: rogue.privateKey }));
  const refused = await satelliteCli(offline, ['import', byRogue]);
  assert.equal(refused.code, 1, refused.stdout);
  assert.match(refused.stderr, /BUNDLE_SIGNATURE_INVALID/);
  // Nor does the registered satellite take it from its own copy of a bundle.
  assert.equal((await satelliteCli(sat.configFile, ['import', byRogue])).code, 1);
  await sat.stop();

  // Rotation: Ground Control starts with a new key and publishes it in every desired state.
  await f.gc.stop();
  await rename(join(f.gc.dataDir, 'bundle-signing.key'), join(f.gc.dataDir, 'bundle-signing.key.old'));
  const gc2 = await startGroundControl(t, { dataDir: f.gc.dataDir, config: f.gc.config });
  await gc2.waitForLog(/"msg":"broker connected"/);
  const newKey = (await gcBundleCli(gc2.configFile, ['key'])).stdout;
  assert.notEqual(newKey, f.keyPem);
  const sat2 = await startSatellite(t, { dataDir: sat.dataDir, config: sat.config });
  const gen = (await statusRow(gc2, f.id))!.desiredGeneration!;
  assert.ok(gen > f.g2.generation, 'the new key made a new generation');
  await eventually(async () => ((await syncStatus(sat2.url)).desiredGeneration === gen ? true : undefined), 20_000, 'the rotated desired state');
  const stick3 = join(await makeTempDir(t, 'hs-apply-new-'), 'stick');
  const made = await gcBundleCli(gc2.configFile, ['create', '--satellite', f.id, '-o', stick3]);
  assert.equal(made.code, 0, made.stderr);
  const withNew = await satelliteCli(sat2.configFile, ['import', stick3]);
  assert.equal(withNew.code, 0, withNew.stderr);
  assert.deepEqual((JSON.parse(withNew.stdout) as { bundleSignature: unknown }).bundleSignature, { status: 'verified', keyId: keyIdOf(newKey) });
  // The old key is retired: its bundle no longer verifies, though registration had handed it out.
  await writeFile(idFile, JSON.stringify({ ...JSON.parse(await readFile(idFile, 'utf8')), bundleKey: f.keyPem }), { mode: 0o600 });
  const old = await satelliteCli(sat2.configFile, ['import', f.g2.dir]);
  assert.equal(old.code, 1);
  assert.match(old.stderr, /BUNDLE_SIGNATURE_INVALID/);
});

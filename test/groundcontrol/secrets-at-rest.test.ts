// Issue 10 item 6: run by hand under umask 022, Ground Control and the satellite keep their data
// dirs 0700 and every file in them 0600 (LMDB included), and Ground Control never writes the
// upstream password in plain text: not to its database (desired records, the embedded broker's
// persisted messages) and not to its log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { connectSatellite, eventually, startGroundControl, type Registered } from '../helpers/groundcontrol.ts';
import { topic } from '../../src/protocol/index.ts';
import { startSatellite } from '../helpers/satellite.ts';
import { makeTempDir } from '../helpers/tmp.ts';

// Children inherit it: what a shell started by hand has.
process.umask(0o022);

interface Entry {
  path: string;
  mode: number;
  dir: boolean;
}

async function walk(root: string): Promise<Entry[]> {
  const out: Entry[] = [{ path: root, mode: (await stat(root)).mode & 0o777, dir: true }];
  for (const name of await readdir(root, { recursive: true })) {
    const path = join(root, name);
    const st = await stat(path);
    out.push({ path, mode: st.mode & 0o777, dir: st.isDirectory() });
  }
  return out;
}

const octal = (m: number) => m.toString(8).padStart(3, '0');

/**
 * Every directory 0700 and every file 0600; `files` limits the file check (the satellite's blob
 * files are image content, private through their 0700 directories only).
 */
async function assertPrivateTree(root: string, files: (path: string) => boolean = () => true): Promise<Entry[]> {
  const entries = await walk(root);
  const wrong = entries.filter((e) => (e.dir ? e.mode !== 0o700 : files(e.path) && e.mode !== 0o600)).map((e) => `${e.path} ${octal(e.mode)}`);
  assert.deepEqual(wrong, [], 'every dir 0700, every secret file 0600');
  return entries;
}

interface Row {
  id: string;
  desiredGeneration: number | null;
  acknowledgedGeneration: number | null;
}

test('umask 022: data dirs 0700, secret files 0600 on both sides; no upstream password in Ground Control\'s database or log', async (t) => {
  const password = `upstream-pw-${randomBytes(12).toString('hex')}`;
  const upstream = { url: 'http://127.0.0.1:9', username: 'robot-at-rest', password };
  const gcData = join(await makeTempDir(t, 'hs-gc-rest-'), 'data'); // created by Ground Control itself
  const gcConfig = { log: { level: 'debug' }, upstream };
  let gc = await startGroundControl(t, { dataDir: gcData, config: gcConfig });

  const created = await gc.api<{ satellite: { id: string }; registration: { token: string } }>('POST', '/api/v1/satellites', { name: 'rest-1' });
  assert.equal(created.status, 201);
  const id = created.body.satellite.id;
  assert.equal((await gc.api('PUT', '/api/v1/groups/rest', { name: 'rest', images: [{ repository: 'apps/at-rest-check', tags: ['v1'] }] })).status, 201);
  assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'rest', satellite: id })).status, 201);

  // A satellite installed before this fix: its data dir exists, 0755.
  const satData = join(await makeTempDir(t, 'hs-sat-rest-'), 'data');
  await mkdir(satData);
  await chmod(satData, 0o755);
  const sat = await startSatellite(t, {
    dataDir: satData,
    config: {
      log: { level: 'debug' },
      control: { groundControlUrl: gc.url, registrationToken: created.body.registration.token, reportIntervalSeconds: 3600 },
      sync: { intervalSeconds: 3600 },
    },
  });
  // The desired state (with the password) went through the broker and reached the satellite.
  await eventually(async () => {
    const r = (await gc.api<{ satellites: Row[] }>('GET', '/api/v1/status')).body.satellites.find((s) => s.id === id);
    return r && r.desiredGeneration !== null && r.acknowledgedGeneration === r.desiredGeneration ? r : undefined;
  }, 60_000, 'satellite acknowledged its desired state');

  const satSecretFile = (p: string) => dirname(p) === satData || dirname(p) === join(satData, 'index');
  const satEntries = await assertPrivateTree(satData, satSecretFile);
  assert.ok(satEntries.filter((e) => !e.dir && satSecretFile(e.path)).length >= 3, 'index files and identity.json checked');
  const satIndex = await readFile(join(satData, 'index', 'data.mdb'));
  // The satellite must keep the password (it syncs after a restart without Ground Control): the
  // modes above are what protect it.
  assert.ok(satIndex.includes(Buffer.from(password)), 'the satellite index holds the desired state');
  assert.ok(satEntries.some((e) => e.path.endsWith('identity.json')));
  await sat.stop();

  const gcLogs = gc.logs();
  await gc.stop();
  const gcEntries = await assertPrivateTree(gcData);
  assert.ok(gcEntries.some((e) => e.path.endsWith('secret.key')));
  const gcDb = await readFile(join(gcData, 'db', 'data.mdb'));
  assert.ok(gcDb.includes(Buffer.from('apps/at-rest-check')), 'the database holds the desired state');
  assert.ok(gcDb.includes(Buffer.from('robot-at-rest')), 'the upstream account name is stored');
  assert.equal(gcDb.includes(Buffer.from(password)), false, 'the upstream password is not in data.mdb');
  assert.ok(gcLogs.includes('desired state changed'), 'the log covers the publish');
  assert.equal(gcLogs.includes(password), false, 'the upstream password is not in the log');

  // An older install left 0755/0644 behind: the next start tightens everything again.
  await chmod(gcData, 0o755);
  for (const e of gcEntries) if (!e.dir) await chmod(e.path, 0o644);
  gc = await startGroundControl(t, { dataDir: gcData, config: gcConfig });
  await assertPrivateTree(gcData);
  // Restarted, the retained desired state (sealed in LMDB) opens and still carries the password,
  // and a new generation gets it from the config held in memory.
  const identity = JSON.parse(await readFile(join(satData, 'identity.json'), 'utf8')) as { satelliteId: string; mqtt: Registered['mqtt'] };
  const client = await connectSatellite(t, gc.mqttUrl!, { satelliteId: identity.satelliteId, mqtt: identity.mqtt }, { clean: true });
  const desiredTopic = topic(id, 'desired');
  client.subscribe(desiredTopic, { qos: 1 });
  const retained = await client.inbox.next((m) => m.topic === desiredTopic, 10_000, 'the retained desired state');
  assert.equal(retained.doc.state.upstream.password, password);
  assert.equal((await gc.api('PUT', '/api/v1/groups/rest', { name: 'rest', images: [{ repository: 'apps/at-rest-check', tags: ['v1', 'v2'] }] })).status, 200);
  const next = await client.inbox.next((m) => m.topic === desiredTopic && m.doc.state.generation > retained.doc.state.generation, 10_000, 'the next generation');
  assert.equal(next.doc.state.upstream.password, password);
  client.end(true);
  await gc.stop();
  assert.equal((await readFile(join(gcData, 'db', 'data.mdb'))).includes(Buffer.from(password)), false);
});

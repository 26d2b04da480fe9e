import { test } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startSatellite, spawnSatellite } from '../helpers/satellite.ts';
import { startGroundControl, eventually } from '../helpers/groundcontrol.ts';
import { startDockerRegistry } from '../helpers/docker-registry.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { freePort } from '../helpers/ports.ts';
import { makeImage, sha256 } from '../helpers/fixtures.ts';
import { skopeoCopy, skopeoInspect } from '../helpers/skopeo.ts';

interface StatusRow {
  id: string;
  online: boolean;
  desiredGeneration: number | null;
  acknowledgedGeneration: number | null;
  appliedGeneration: number | null;
}

test('zero-touch: register with a token, get a group, sync it, report; converge after being offline; survive a broker restart', async (t) => {
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const web1 = await makeImage(layout, { tag: 'w1', seed: 'cp-web-1', layerSizes: [150_000, 50_000] });
  const web2 = await makeImage(layout, { tag: 'w2', seed: 'cp-web-2', layerSizes: [120_000] });
  const agent = await makeImage(layout, { tag: 'a1', seed: 'cp-agent', layerSizes: [80_000] });
  await skopeoCopy(`oci:${layout}:w1`, `docker://${upstream.host}/apps/web:v1`);
  await skopeoCopy(`oci:${layout}:w2`, `docker://${upstream.host}/apps/web:v2`);
  await skopeoCopy(`oci:${layout}:a1`, `docker://${upstream.host}/tools/agent:1`);

  const gcData = await makeTempDir(t, 'hs-gc-');
  const brokerPort = await freePort();
  const gcConfig = { upstream: { url: upstream.url }, broker: { embedded: { host: '127.0.0.1', port: brokerPort } } };
  let gc = await startGroundControl(t, { dataDir: gcData, config: gcConfig });

  const created = await gc.api<{ satellite: { id: string }; registration: { token: string } }>('POST', '/api/v1/satellites', { name: 'shop-17', site: 'berlin' });
  assert.equal(created.status, 201);
  const id = created.body.satellite.id;
  const token = created.body.registration.token;
  const group = (tags: string[], more: object[] = []) => ({ name: 'edge', images: [{ repository: 'apps/web', tags }, ...more] });
  assert.equal((await gc.api('PUT', '/api/v1/groups/edge', group(['v1']))).status, 201);
  assert.equal((await gc.api('POST', '/api/v1/assignments', { group: 'edge', site: 'berlin' })).status, 201);

  // First boot: the token is the only thing the satellite is given.
  const satData = await makeTempDir(t, 'hs-sat-');
  const satConfig = {
    control: { groundControlUrl: gc.url, registrationToken: token, reportIntervalSeconds: 3600 },
    sync: { intervalSeconds: 3600, retry: { baseMs: 50, maxMs: 500 } },
    store: { gcGraceSeconds: 0 },
  };
  let sat = await startSatellite(t, { dataDir: satData, config: satConfig });
  const row = async () => (await gc.api<{ satellites: StatusRow[] }>('GET', '/api/v1/status')).body.satellites.find((s) => s.id === id);
  const converged = async (generation?: number) =>
    eventually(async () => {
      const r = await row();
      return r && r.online && r.desiredGeneration !== null && r.appliedGeneration === r.desiredGeneration && (generation === undefined || r.desiredGeneration >= generation) ? r : undefined;
    }, 60_000, 'satellite applied its desired generation');
  const first = await converged();
  assert.equal(first.acknowledgedGeneration, first.desiredGeneration);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/apps/web:v1`, { raw: true })), web1.manifestDigest);
  const identity = await stat(join(satData, 'identity.json'));
  assert.equal(identity.mode & 0o777, 0o600, 'identity stored private');

  // The token cannot be used twice: a second device with it is refused and exits 78.
  const thief = await spawnSatellite(t, { config: { control: { groundControlUrl: gc.url, registrationToken: token } } });
  assert.equal((await thief.proc.exited).code, 78);
  assert.match(thief.logs(), /TOKEN_USED/);

  // Offline: the satellite is stopped; the group changes and a command is sent meanwhile.
  await sat.stop();
  await eventually(async () => ((await row())?.online === false ? true : undefined), 10_000, 'offline presence');
  await gc.api('PUT', '/api/v1/groups/edge', group(['v1', 'v2'], [{ repository: 'tools/agent', tags: ['1'] }]));
  const cmd = await gc.api<{ command: { id: string } }>('POST', `/api/v1/satellites/${id}/commands`, { name: 'sync-now' });
  assert.equal(cmd.status, 202);
  const wanted = (await row())!.desiredGeneration!;
  assert.ok(wanted > first.desiredGeneration!);

  // Back online with the stored identity (the used token is never sent again).
  sat = await startSatellite(t, { dataDir: satData, config: satConfig });
  await converged(wanted);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/apps/web:v2`, { raw: true })), web2.manifestDigest);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/tools/agent:1`, { raw: true })), agent.manifestDigest);
  const done = await eventually(async () => {
    const c = await gc.api<{ command: { status: string; duplicate: boolean | null; result: { result?: string } | null } }>('GET', `/api/v1/satellites/${id}/commands/${cmd.body.command.id}`);
    return c.body.command.status === 'ok' || c.body.command.status === 'failed' ? c.body.command : undefined;
  }, 30_000, 'command result');
  assert.equal(done.status, 'ok');
  assert.equal(done.duplicate, false);
  // Exactly once: one "command finished" for this id in the satellite's log.
  const finished = sat.logs().split('\n').filter((l) => l.includes(cmd.body.command.id) && l.includes('"msg":"command finished"'));
  assert.equal(finished.length, 1, `command finished ${finished.length} times`);

  // Ground Control (and its embedded broker) restarts: the satellite reconnects and converges again.
  await gc.stop();
  gc = await startGroundControl(t, { dataDir: gcData, config: gcConfig });
  await gc.api('PUT', '/api/v1/groups/edge', group(['v2'], [{ repository: 'tools/agent', tags: ['1'] }]));
  const after = (await row())!.desiredGeneration!;
  await converged(after);
  const gone = await fetch(`${sat.url}/v2/apps/web/manifests/v1`, { method: 'HEAD' });
  assert.equal(gone.status, 404, 'v1 left the group and was removed');
});

test('the same flow through the Debian mosquitto with the documented ACL, across a broker restart', async (t) => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { readFile } = await import('node:fs/promises');
  const { startMosquitto } = await import('../helpers/mosquitto.ts');
  const { requireBinary } = await import('../helpers/bin.ts');
  const { mosquittoAcl } = await import('../../src/groundcontrol/index.ts');

  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-fixture-');
  const v1 = await makeImage(layout, { tag: 'v1', seed: 'mq-app-1', layerSizes: [90_000] });
  const v2 = await makeImage(layout, { tag: 'v2', seed: 'mq-app-2', layerSizes: [70_000] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/mq/app:v1`);
  await skopeoCopy(`oci:${layout}:v2`, `docker://${upstream.host}/mq/app:v2`);

  const seed = join(await makeTempDir(t, 'hs-passwd-'), 'passwd');
  await promisify(execFile)(requireBinary('mosquitto_passwd'), ['-c', '-b', seed, 'groundcontrol', 'gc-secret-for-tests']);
  const mosq = await startMosquitto(t, { passwords: await readFile(seed, 'utf8'), acl: mosquittoAcl('groundcontrol') });
  const gc = await startGroundControl(t, {
    config: {
      upstream: { url: upstream.url },
      broker: {
        url: mosq.url,
        username: 'groundcontrol',
        password: 'gc-secret-for-tests',
        passwordFile: mosq.passwordFile,
        reloadCommand: ['sh', '-c', `kill -HUP "$(cat '${mosq.pidFile}')"`],
      },
    },
  });
  const created = await gc.api<{ satellite: { id: string }; registration: { token: string } }>('POST', '/api/v1/satellites', { name: 'ship-4' });
  const id = created.body.satellite.id;
  await gc.api('PUT', '/api/v1/groups/fleet', { name: 'fleet', images: [{ repository: 'mq/app', tags: ['v1'] }] });
  await gc.api('POST', '/api/v1/assignments', { group: 'fleet', satellite: id });

  const sat = await startSatellite(t, {
    config: {
      control: { groundControlUrl: gc.url, registrationToken: created.body.registration.token, reconnectMinMs: 200, reconnectMaxMs: 1000 },
      sync: { intervalSeconds: 3600 },
      store: { gcGraceSeconds: 0 },
    },
  });
  const row = async () => (await gc.api<{ satellites: StatusRow[] }>('GET', '/api/v1/status')).body.satellites.find((s) => s.id === id);
  const applied = (generation: number) =>
    eventually(async () => {
      const r = await row();
      return r && r.appliedGeneration !== null && r.appliedGeneration >= generation ? r : undefined;
    }, 60_000, `generation ${generation} applied over mosquitto`);
  const g1 = (await row())!.desiredGeneration!;
  await applied(g1);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/mq/app:v1`, { raw: true })), v1.manifestDigest);

  // The broker goes down and comes back with its persistence: both sides reconnect.
  await mosq.stop();
  await mosq.restart();
  await gc.api('PUT', '/api/v1/groups/fleet', { name: 'fleet', images: [{ repository: 'mq/app', tags: ['v2'] }] });
  const g2 = (await row())!.desiredGeneration!;
  assert.ok(g2 > g1);
  await applied(g2);
  assert.equal(sha256(await skopeoInspect(`docker://${sat.host}/mq/app:v2`, { raw: true })), v2.manifestDigest);
});

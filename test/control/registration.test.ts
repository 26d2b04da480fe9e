import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { createControl } from '../../src/control/index.ts';
import { isSatelliteError } from '../../src/lib/errors.ts';
import { REGISTER_PATH, type RegisterRequest, type RegisterResponse } from '../../src/protocol/index.ts';
import { Store } from '../../src/store/index.ts';
import { defer, type Teardown } from '../helpers/cleanup.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { startBroker } from './broker.ts';
import { assertAllValid, connectGc, controlConfig, field, openSatellite, testLog, until } from './helpers.ts';

const TOKEN = 'tok-0123456789abcdef';

interface FakeGc {
  url: string;
  requests: Array<{ method: string; path: string; body: RegisterRequest }>;
  /** Answers, in order; the last one repeats. */
  answers: Array<{ status: number; body: unknown }>;
}

/** A small HTTP server answering REGISTER_PATH the way Ground Control does (src/protocol/registration.ts). */
async function startFakeGc(t: Teardown, answers: FakeGc['answers']): Promise<FakeGc> {
  const gc: FakeGc = { url: '', requests: [], answers };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: RegisterRequest;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as RegisterRequest;
      } catch {
        res.writeHead(400).end();
        return;
      }
      gc.requests.push({ method: req.method ?? '', path: req.url ?? '', body });
      if (req.method !== 'POST' || req.url !== REGISTER_PATH) {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such route' } }));
        return;
      }
      const answer = gc.answers.length > 1 ? gc.answers.shift()! : gc.answers[0]!;
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  defer(t, () => new Promise<void>((resolve) => server.close(() => resolve())));
  gc.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return gc;
}

function registered(brokerUrl: string, id: string, password: string): RegisterResponse {
  return {
    satelliteId: id,
    name: 'pi-in-the-shop',
    site: 'shop-1',
    mqtt: { url: brokerUrl, username: id, password, topicPrefix: 'hs/v1' },
    upstream: { url: 'http://127.0.0.1:9', username: 'robot$shop', password: 'robot-secret' },
  };
}

async function openStore(t: Teardown, dataDir: string): Promise<Store> {
  const store = await Store.open({ dataDir, gcGraceSeconds: 0, uploadTtlSeconds: 3600, readChunkBytes: 65536 }, testLog('store'));
  defer(t, () => store.close());
  return store;
}

test('zero-touch registration: first boot registers from a token file and keeps identity.json (0600); later boots reuse it', async (t) => {
  const ID = 'sat-reg-1';
  const broker = await startBroker(t, { users: { [ID]: 'pw-reg-1', gc: 'gc-pass' } });
  const fake = await startFakeGc(t, [{ status: 201, body: registered(broker.url, ID, 'pw-reg-1') }]);
  const gc = await connectGc(t, broker.url, { username: 'gc', password: 'gc-pass' });
  const dataDir = await makeTempDir(t);
  const bootDir = await makeTempDir(t, 'hs-boot-');
  const tokenFile = join(bootDir, 'harbor-satellite-token');
  await writeFile(tokenFile, `${TOKEN}\n`);
  const config = { groundControlUrl: fake.url, registrationTokenFile: tokenFile };

  const first = await openSatellite(t, { dataDir, config });
  assert.equal(fake.requests.length, 1);
  assert.deepEqual(fake.requests[0], { method: 'POST', path: REGISTER_PATH, body: { token: TOKEN, hostname: 'test-host', version: '0.1.0-test' } });
  assert.equal(first.control.identity.satelliteId, ID);
  assert.deepEqual(first.control.identity.upstream, { url: 'http://127.0.0.1:9', username: 'robot$shop', password: 'robot-secret' });
  const file = join(dataDir, 'identity.json');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  assert.equal(stored.satelliteId, ID);
  assert.deepEqual(stored.mqtt, { url: broker.url, username: ID, password: 'pw-reg-1', topicPrefix: 'hs/v1' });
  // Connected with the credentials Ground Control handed out (the broker refuses anonymous clients).
  await gc.waitFor('online with registered credentials', (m) => m.satelliteId === ID && m.channel === 'presence' && field(m, 'online') === true);
  await first.close();

  // Second boot: the token is gone (used), the identity is reused, Ground Control is not asked.
  await unlink(tokenFile);
  const second = await openSatellite(t, { dataDir, config });
  assert.equal(fake.requests.length, 1);
  assert.equal(second.control.identity.satelliteId, ID);
  await until('connected again', () => second.control.status().connection.connected);
  assertAllValid(gc);
});

test('a rejected token fails with REGISTRATION_FAILED and Ground Control\'s code, without retrying', async (t) => {
  const fake = await startFakeGc(t, [{ status: 409, body: { error: { code: 'TOKEN_USED', message: 'token already used' } } }]);
  const dataDir = await makeTempDir(t);
  const store = await openStore(t, dataDir);
  const log = testLog('reg');
  await assert.rejects(
    createControl({ config: controlConfig({ groundControlUrl: fake.url, registrationToken: TOKEN }), dataDir, log, store, version: '1' }),
    (err: unknown) => {
      assert.ok(isSatelliteError(err, 'REGISTRATION_FAILED'), String(err));
      assert.deepEqual(err.detail, { status: 409, code: 'TOKEN_USED', message: 'token already used' });
      assert.match(err.message, /TOKEN_USED/);
      return true;
    },
  );
  assert.equal(fake.requests.length, 1);
  await assert.rejects(stat(join(dataDir, 'identity.json')), { code: 'ENOENT' });

  for (const code of ['TOKEN_EXPIRED', 'TOKEN_UNKNOWN']) {
    fake.answers = [{ status: 401, body: { error: { code, message: code.toLowerCase() } } }];
    await assert.rejects(
      createControl({ config: controlConfig({ groundControlUrl: fake.url, registrationToken: TOKEN }), dataDir, log, store, version: '1' }),
      (err: unknown) => isSatelliteError(err, 'REGISTRATION_FAILED') && (err.detail as { code: string }).code === code,
    );
  }
});

test('registration retries with backoff while Ground Control is unavailable, and stops on abort', async (t) => {
  const ID = 'sat-reg-retry';
  const fake = await startFakeGc(t, [
    { status: 503, body: { error: { code: 'UNAVAILABLE', message: 'starting' } } },
    { status: 502, body: 'bad gateway' },
    { status: 200, body: registered('mqtt://127.0.0.1:9', ID, 'pw') },
  ]);
  const dataDir = await makeTempDir(t);
  const store = await openStore(t, dataDir);
  const log = testLog('reg');
  const control = await createControl({ config: controlConfig({ groundControlUrl: fake.url, registrationToken: TOKEN, reconnectMinMs: 50 }), dataDir, log, store, version: '1' });
  assert.equal(control.identity.satelliteId, ID);
  assert.equal(fake.requests.length, 3);
  await control.close();

  // Nothing listens on the URL: retried until the daemon gives up (shutdown).
  const dataDir2 = await makeTempDir(t);
  const store2 = await openStore(t, dataDir2);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 400);
  await assert.rejects(
    createControl({ config: controlConfig({ groundControlUrl: 'http://127.0.0.1:9', registrationToken: TOKEN, reconnectMinMs: 50 }), dataDir: dataDir2, log, store: store2, version: '1', signal: ac.signal }),
    { name: 'AbortError' },
  );
});

test('bad control setups fail clearly: no token, damaged identity, wrong broker password', async (t) => {
  const dataDir = await makeTempDir(t);
  const store = await openStore(t, dataDir);
  const log = testLog('reg');
  await assert.rejects(
    createControl({ config: controlConfig({ groundControlUrl: 'http://127.0.0.1:9' }), dataDir, log, store, version: '1' }),
    (err: unknown) => isSatelliteError(err, 'CONFIG_INVALID') && /registrationToken/.test(err.message),
  );
  await assert.rejects(
    createControl({ config: controlConfig({ groundControlUrl: 'http://127.0.0.1:9', registrationTokenFile: join(dataDir, 'missing') }), dataDir, log, store, version: '1' }),
    (err: unknown) => isSatelliteError(err, 'CONFIG_INVALID') && /ENOENT/.test(err.message),
  );
  await writeFile(join(dataDir, 'identity.json'), '{"version":1,');
  await assert.rejects(
    createControl({ config: controlConfig({ groundControlUrl: 'http://127.0.0.1:9', registrationToken: TOKEN }), dataDir, log, store, version: '1' }),
    (err: unknown) => isSatelliteError(err, 'IDENTITY_INVALID'),
  );

  const broker = await startBroker(t, { users: { 'sat-pw': 'right' } });
  const sat = await openSatellite(t, { dataDir: await makeTempDir(t), config: { satelliteId: 'sat-pw', mqtt: { url: broker.url, username: 'sat-pw', password: 'wrong' } } });
  await until('connection refused', () => /authori/i.test(sat.control.status().connection.lastError ?? ''), 5000, () => sat.control.status());
  assert.equal(sat.control.status().connection.connected, false);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadGroundControlConfig } from '../../src/groundcontrol/config.ts';
import { makeTempDir } from '../helpers/tmp.ts';

test('config: defaults, relative paths, environment; errors name the key', async (t) => {
  const dir = await makeTempDir(t, 'hs-gc-cfg-');
  const file = join(dir, 'gc.json');
  await writeFile(file, JSON.stringify({ dataDir: 'state', broker: { url: 'mqtt://127.0.0.1:1883', password: 'p', passwordFile: 'passwd' } }));
  const config = await loadGroundControlConfig({ file, env: { GROUNDCONTROL_ADMIN_TOKEN: 'hsa_0123456789abcdef', GROUNDCONTROL_LOG_LEVEL: 'debug' } });
  assert.equal(config.dataDir, join(dir, 'state'));
  assert.equal(config.broker.passwordFile, join(dir, 'passwd'));
  assert.deepEqual(config.api, {
    listen: { host: '0.0.0.0', port: 8480 },
    maxBodyBytes: 1048576,
    maxJsonDepth: 32,
    register: { maxFailuresPerAddress: 10, failureWindowSeconds: 60, logIntervalSeconds: 10, maxTrackedAddresses: 10000 },
    live: { maxConnections: 100, heartbeatSeconds: 15, intervalMs: 1000, maxBufferedBytes: 1048576 },
  });
  assert.deepEqual(config.broker.limits, {
    maxConnections: 10000,
    maxPendingConnections: 512,
    maxPendingPerAddress: 64,
    connectTimeoutSeconds: 10,
    maxConnectBytes: 8192,
    logIntervalSeconds: 10,
  });
  assert.equal(config.broker.username, 'groundcontrol');
  assert.equal(config.registrationTokenTtlSeconds, 86400);
  assert.equal(config.log.level, 'debug');
  assert.equal(config.bootstrapAdminToken, 'hsa_0123456789abcdef');
  assert.ok(Object.isFrozen(config.broker));

  const bad = async (doc: object, re: RegExp) => {
    await writeFile(file, JSON.stringify(doc));
    await assert.rejects(loadGroundControlConfig({ file, env: {} }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'CONFIG_INVALID');
      assert.match(err.message, re);
      return true;
    });
  };
  await bad({ broker: { url: 'mqtt://127.0.0.1:1', embedded: { port: 1 } } }, /\/broker: "embedded" and "url" exclude each other/);
  await bad({ broker: { passwordFile: 'x' } }, /\/broker\/passwordFile: only used with an external broker/);
  await bad({ broker: { url: 'http://x' } }, /\/broker\/url: must match pattern/);
  await bad({ broker: { url: 'mqtt://127.0.0.1:1', limits: { maxPendingPerAddress: 4 } } }, /\/broker\/limits: only used by the embedded broker/);
  await bad({ broker: { limits: { maxConnectBytes: 10 } }, api: { maxJsonDepth: 2 } }, /\/api\/maxJsonDepth: must be >= 4[\s\S]*\/broker\/limits\/maxConnectBytes: must be >= 512/);
  await bad({ upstream: { username: 'u' } }, /\/upstream: must have required property 'url'/);
  await bad({ publicMqttUrl: 'mqtt://h:1', log: { level: 'loud' } }, /\/log\/level: must be one of/);
});

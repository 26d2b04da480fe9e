import assert from 'node:assert/strict';
import { test } from 'node:test';
import { controlConfigSchema, type ControlConfig } from '../../src/control/index.ts';
import { isSatelliteError } from '../../src/lib/errors.ts';
import { validate } from '../../src/lib/validate.ts';

const check = (input: unknown) => validate<ControlConfig>(controlConfigSchema, input, 'control config');

test('control config: defaults filled in, every problem named with its key', () => {
  const c = check({ groundControlUrl: 'https://gc.example.com', registrationTokenFile: '/boot/harbor-satellite-token' });
  assert.equal(c.reportIntervalSeconds, 60);
  assert.equal(c.keepaliveSeconds, 30);
  assert.equal(c.connectTimeoutMs, 10000);
  assert.equal(c.maxOutbox, 10000);
  assert.equal(c.commandIdsMax, 10000);
  assert.equal(c.commandIdsMaxAgeDays, 30);

  const explicit = check({ satelliteId: 'sat-1', mqtt: { url: 'mqtts://broker.example.com:8883', username: 'sat-1', password: 'x', caFile: '/etc/ca.pem' } });
  assert.equal(explicit.mqtt?.url, 'mqtts://broker.example.com:8883');

  assert.throws(
    () => check({ mqtt: { url: 'http://nope' }, reportIntervalSeconds: 0, bogus: true }),
    (err: unknown) => {
      assert.ok(isSatelliteError(err, 'CONFIG_INVALID'));
      const problems = err.detail as string[];
      assert.ok(problems.some((p) => p.includes('unknown key "bogus"')), problems.join('\n'));
      assert.ok(problems.some((p) => p.startsWith('/mqtt/url')), problems.join('\n'));
      assert.ok(problems.some((p) => p.startsWith('/reportIntervalSeconds')), problems.join('\n'));
      assert.ok(problems.some((p) => p.includes('satelliteId')), problems.join('\n'));
      return true;
    },
  );
  assert.throws(() => check({ registrationToken: 'short' }), (err: unknown) => isSatelliteError(err, 'CONFIG_INVALID'));
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectMqtt, connectSatellite, startGroundControl, TEST_UPSTREAM } from '../helpers/groundcontrol.ts';

test('zero-touch registration: one-time, expiring tokens; site tokens; working MQTT credentials', async (t) => {
  const gc = await startGroundControl(t);
  const register = (token: string, extra: Record<string, unknown> = {}) => gc.api('POST', '/api/v1/register', { token, ...extra }, null);

  await t.test('a satellite token works once; the answer carries MQTT and upstream credentials', async () => {
    const created = await gc.api('POST', '/api/v1/satellites', { name: 'kiosk' });
    const id = created.body.satellite.id;
    const first = await register(created.body.registration.token, { hostname: 'kiosk-01', version: '0.1.0' });
    assert.equal(first.status, 200);
    assert.equal(first.body.satelliteId, id);
    assert.equal(first.body.name, 'kiosk');
    assert.equal(first.body.site, null);
    assert.deepEqual(Object.keys(first.body.mqtt).sort(), ['password', 'topicPrefix', 'url', 'username']);
    assert.equal(first.body.mqtt.url, gc.mqttUrl);
    assert.equal(first.body.mqtt.username, id);
    assert.equal(first.body.mqtt.topicPrefix, 'hs/v1');
    assert.ok(first.body.mqtt.password.length >= 32);
    assert.deepEqual(first.body.upstream, TEST_UPSTREAM);
    // The credentials work on the broker Ground Control named.
    const client = await connectSatellite(t, first.body.mqtt.url, first.body);
    assert.ok(client.connected);

    const again = await register(created.body.registration.token);
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'TOKEN_USED');
    assert.match(again.body.error.message, /already used/);
    const shown = await gc.api('GET', `/api/v1/satellites/${id}`);
    assert.equal(shown.body.satellite.hostname, 'kiosk-01');
    assert.ok(shown.body.satellite.registeredAt);
  });

  await t.test('expired and unknown tokens are refused with their own codes', async () => {
    const created = await gc.api('POST', '/api/v1/satellites', { name: 'late', ttlSeconds: 1 });
    await sleep(1100);
    const expired = await register(created.body.registration.token);
    assert.equal(expired.status, 410);
    assert.equal(expired.body.error.code, 'TOKEN_EXPIRED');
    const unknown = await register('hsr_this-token-was-never-issued-by-anyone');
    assert.equal(unknown.status, 401);
    assert.equal(unknown.body.error.code, 'TOKEN_UNKNOWN');
    const revoked = await gc.api('POST', '/api/v1/tokens', {});
    assert.equal((await gc.api('DELETE', `/api/v1/tokens/${revoked.body.tokenId}`)).status, 200);
    assert.equal((await register(revoked.body.token)).body.error.code, 'TOKEN_UNKNOWN', 'a revoked token is unknown');
    const malformed = await register('short');
    assert.equal(malformed.status, 400);
    assert.match(malformed.body.error.message, /\/token: must NOT have fewer than 16 characters/);
  });

  await t.test('a site token creates a new satellite at that site', async () => {
    const token = await gc.api('POST', '/api/v1/tokens', { site: 'harbor-7', ttlSeconds: 60 });
    assert.equal(token.status, 201);
    assert.equal(token.body.satelliteId, null);
    const reg = await register(token.body.token, { hostname: 'rpi-dock' });
    assert.equal(reg.status, 200);
    assert.equal(reg.body.site, 'harbor-7');
    assert.equal(reg.body.name, 'rpi-dock');
    assert.match(reg.body.satelliteId, /^rpi-dock-[a-z0-9]{6}$/);
    const list = await gc.api('GET', '/api/v1/satellites?site=harbor-7');
    assert.deepEqual(list.body.satellites.map((s: { id: string }) => s.id), [reg.body.satelliteId]);
    assert.equal((await register(token.body.token)).body.error.code, 'TOKEN_USED');
    const tokens = await gc.api('GET', '/api/v1/tokens');
    const listed = tokens.body.tokens.find((x: { id: string }) => x.id === token.body.tokenId);
    assert.equal(listed.usedBy, reg.body.satelliteId);
    assert.equal(listed.token, undefined);
  });

  await t.test('re-registering with a new token rotates the MQTT password', async () => {
    const created = await gc.api('POST', '/api/v1/satellites', { name: 'rotator' });
    const id = created.body.satellite.id;
    const first = await register(created.body.registration.token);
    const again = await gc.api('POST', `/api/v1/satellites/${id}/tokens`, {});
    assert.equal(again.status, 201);
    const second = await register(again.body.token);
    assert.equal(second.status, 200);
    assert.equal(second.body.satelliteId, id);
    assert.notEqual(second.body.mqtt.password, first.body.mqtt.password);
    await assert.rejects(connectSatellite(t, gc.mqttUrl as string, first.body), /Bad username or password|Not authorized/);
    assert.ok((await connectSatellite(t, gc.mqttUrl as string, second.body)).connected);
    // The satellite's own default client id works too.
    assert.ok((await connectSatellite(t, gc.mqttUrl as string, second.body, { clientId: `satellite-${id}` })).connected);
    // Satellites log in with their id as client id: another one would take over a session.
    await assert.rejects(
      connectMqtt(t, gc.mqttUrl as string, { clientId: 'someone-else', username: id, password: second.body.mqtt.password }),
      /Identifier rejected/,
    );
  });
});

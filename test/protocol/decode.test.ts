import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeMessage, encodeMessage, topic, parseTopic, fleetFilter, MAX_PAYLOAD_BYTES, parseDesiredState } from '../../src/protocol/index.ts';

const at = new Date().toISOString();

test('topics are per satellite and parse back; anything else is refused', () => {
  assert.equal(topic('sat-1', 'desired'), 'hs/v1/satellites/sat-1/desired');
  assert.deepEqual(parseTopic('hs/v1/satellites/sat-1/commands'), { satelliteId: 'sat-1', channel: 'commands' });
  for (const bad of ['hs/v1/satellites/sat-1/other', 'hs/v2/satellites/sat-1/desired', 'hs/v1/satellites/+/desired', 'hs/v1/satellites/UP/desired', 'hs/v1/satellites/a/b/desired']) {
    assert.equal(parseTopic(bad), undefined, bad);
  }
  assert.equal(fleetFilter('state'), 'hs/v1/satellites/+/state');
});

test('messages decode when valid; malformed, oversized and wrong-satellite messages are rejected', () => {
  const cmd = { type: 'command', satelliteId: 'sat-1', id: 'c-1', name: 'sync-now', issuedAt: at };
  assert.deepEqual(decodeMessage(topic('sat-1', 'commands'), encodeMessage(cmd)).message, cmd);
  const reject = (t: string, payload: Buffer | string, re: RegExp, expect?: { satelliteId?: string }) =>
    assert.throws(() => decodeMessage(t, Buffer.from(payload), expect), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'MESSAGE_INVALID');
      assert.match(err.message, re);
      return true;
    });
  reject(topic('sat-1', 'commands'), '{not json', /not JSON/);
  reject(topic('sat-1', 'commands'), JSON.stringify({ ...cmd, name: 'rm -rf' }), /\/name: must be one of/);
  reject(topic('sat-1', 'commands'), JSON.stringify({ ...cmd, extra: 1 }), /unknown key "extra"/);
  const verify = { ...cmd, name: 'verify', args: { repair: true } };
  assert.deepEqual(decodeMessage(topic('sat-1', 'commands'), encodeMessage(verify)).message, verify);
  reject(topic('sat-1', 'commands'), JSON.stringify({ ...verify, args: { repair: 'yes' } }), /\/args\/repair: must be boolean/);
  reject(topic('sat-1', 'commands'), JSON.stringify({ ...verify, args: { deep: true } }), /unknown key "deep"/);
  reject(topic('sat-1', 'commands'), JSON.stringify({ ...cmd, satelliteId: 'sat-2' }), /names satellite sat-2 on sat-1's topic/);
  reject(topic('sat-2', 'commands'), JSON.stringify({ ...cmd, satelliteId: 'sat-2' }), /for satellite sat-2, not sat-1/, { satelliteId: 'sat-1' });
  reject(topic('sat-1', 'commands'), Buffer.alloc(MAX_PAYLOAD_BYTES + 1, 32), /exceeds/);
  // Deep nesting is invalid input, not a stack overflow in validation.
  reject(topic('sat-1', 'commands'), `{"type":${'['.repeat(50_000)}${']'.repeat(50_000)}}`, /nests deeper than 64 levels/);
  const desired = {
    type: 'desired',
    satelliteId: 'sat-1',
    issuedAt: at,
    state: { generation: 2, upstream: { url: 'http://127.0.0.1:5000' }, images: [{ repository: 'a/b', tags: ['v1'] }] },
  };
  assert.equal(decodeMessage(topic('sat-1', 'desired'), encodeMessage(desired), { channel: 'desired' }).message.state.generation, 2);
  reject(topic('sat-1', 'desired'), JSON.stringify({ ...desired, state: { ...desired.state, generation: 'x' } }), /\/state\/generation: must be integer/);
});

test('desired states validate the same inside a message and standalone, in any order', () => {
  const state = { generation: 1, upstream: { url: 'http://127.0.0.1:5000' }, images: [{ repository: 'a/b', tags: ['v1'] }] };
  for (let i = 0; i < 2; i++) {
    assert.equal(parseDesiredState(state).generation, 1);
    const msg = { type: 'desired', satelliteId: 's-1', issuedAt: at, state };
    assert.equal(decodeMessage(topic('s-1', 'desired'), encodeMessage(msg), { channel: 'desired' }).message.state.generation, 1);
  }
});

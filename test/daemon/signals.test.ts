import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnGroundControl } from '../helpers/groundcontrol.ts';
import { spawnSatellite } from '../helpers/satellite.ts';

// Log lines reach stdout the moment they are logged: a SIGTERM sent on seeing "listening" lands
// while start-up is still running. It must stop the service cleanly, never kill it by default action.

test('SIGTERM as soon as the registry listens: the satellite stops cleanly (exit 0)', async (t) => {
  for (let i = 0; i < 3; i++) {
    const sat = await spawnSatellite(t);
    await sat.waitForLog(/"msg":"registry listening"/, 20_000);
    const exit = await sat.kill('SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, sat.logs());
    assert.match(sat.logs(), /"msg":"(satellite stopped|stopped during start-up)"/);
  }
});

test('SIGTERM as soon as the API listens: Ground Control stops cleanly (exit 0)', async (t) => {
  for (let i = 0; i < 3; i++) {
    const gc = await spawnGroundControl(t);
    await gc.waitForLog(/"msg":"api listening"/, 20_000);
    const exit = await gc.kill('SIGTERM');
    assert.deepEqual(exit, { code: 0, signal: null }, gc.logs());
    assert.match(gc.logs(), /"msg":"stopped"/);
  }
});

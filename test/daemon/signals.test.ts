import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { ExitInfo } from '../helpers/process.ts';
import { spawnGroundControl } from '../helpers/groundcontrol.ts';
import { spawnSatellite } from '../helpers/satellite.ts';

// Log lines reach stdout the moment they are logged: a SIGTERM sent on seeing "listening" lands
// while start-up is still running. It must stop the service cleanly, never kill it by default action.

interface Service {
  waitForLog(regex: RegExp, timeoutMs?: number): Promise<unknown>;
  kill(signal?: NodeJS.Signals): Promise<ExitInfo>;
  logs(): string;
}

const cases: Array<{ name: string; spawn: (t: TestContext) => Promise<Service>; listening: RegExp; stopped: RegExp }> = [
  { name: 'the satellite (registry listening)', spawn: (t) => spawnSatellite(t), listening: /"msg":"registry listening"/, stopped: /"msg":"(satellite stopped|stopped during start-up)"/ },
  { name: 'Ground Control (api listening)', spawn: (t) => spawnGroundControl(t), listening: /"msg":"api listening"/, stopped: /"msg":"stopped"/ },
];

for (const c of cases) {
  test(`SIGTERM as soon as ${c.name}: a clean stop, exit 0`, async (t) => {
    for (let i = 0; i < 3; i++) {
      const service = await c.spawn(t);
      await service.waitForLog(c.listening, 20_000);
      assert.deepEqual(await service.kill('SIGTERM'), { code: 0, signal: null }, service.logs());
      assert.match(service.logs(), c.stopped);
    }
  });
}

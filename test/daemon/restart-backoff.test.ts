import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RestartBackoff, RUN_STATE_FILE } from '../../src/lib/restart-backoff.ts';
import { spawnSatellite, startSatellite } from '../helpers/satellite.ts';
import { spawnGroundControl } from '../helpers/groundcontrol.ts';
import { makeTempDir } from '../helpers/tmp.ts';

/** A listening socket on a free loopback port, so a service configured for it fails to start. */
async function takePort(t: { after(fn: () => void): void }) {
  const blocker = createServer();
  blocker.listen(0, '127.0.0.1');
  await once(blocker, 'listening');
  t.after(() => blocker.close());
  return { blocker, port: (blocker.address() as { port: number }).port };
}

const CONFIG = { enabled: true, baseSeconds: 10, maxSeconds: 40, healthySeconds: 300 };

test('restart back-off: quick failures in a row double the wait up to the cap; a clean stop or a healthy run resets it', async (t) => {
  const dir = join(await makeTempDir(t, 'hs-backoff-'), 'not-yet-created');
  const b = new RestartBackoff(dir, CONFIG);
  let now = 1_000_000;
  const waits: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await new RestartBackoff(dir, CONFIG).begin((now += 2000));
    assert.equal(r.damaged, false);
    waits.push(r.delayMs);
  }
  assert.deepEqual(waits, [0, 10_000, 20_000, 40_000, 40_000]);

  // A clean stop: the next start does not wait.
  await b.begin((now += 2000));
  await b.end();
  assert.equal(JSON.parse(await readFile(join(dir, RUN_STATE_FILE), 'utf8')).clean, true);
  assert.equal((await new RestartBackoff(dir, CONFIG).begin((now += 2000))).delayMs, 0);
  assert.equal((await new RestartBackoff(dir, CONFIG).begin((now += 2000))).delayMs, 10_000);
  // A run that lasted longer than healthySeconds and then died: counted from zero again.
  assert.equal((await new RestartBackoff(dir, CONFIG).begin((now += 301_000))).delayMs, 0);

  // A torn or foreign record is reported, treated as no history, and replaced by a valid one.
  await writeFile(join(dir, RUN_STATE_FILE), '{"startedAt": 12');
  const torn = await new RestartBackoff(dir, CONFIG).begin((now += 2000));
  assert.deepEqual(torn, { delayMs: 0, failures: 0, damaged: true });
  const state = JSON.parse(await readFile(join(dir, RUN_STATE_FILE), 'utf8'));
  assert.deepEqual(state, { startedAt: now, failures: 0, clean: false });
});

test('under systemd (INVOCATION_ID) a satellite that keeps failing at start waits longer each time; SIGTERM ends a clean run', async (t) => {
  // The port is taken, so every start fails right after opening the store: exit 1, as in a crash loop.
  const { blocker, port } = await takePort(t);
  const dataDir = await makeTempDir(t, 'hs-backoff-data-');
  const opts = (listenPort: number, invocation = true) => ({
    dataDir,
    env: invocation ? { INVOCATION_ID: '0123456789abcdef0123456789abcdef' } : ({} as Record<string, string>),
    config: { registry: { listen: { host: '127.0.0.1', port: listenPort } }, restartBackoff: { baseSeconds: 1, maxSeconds: 60 } },
  });
  const backoffLine = /"msg":"restart back-off: the last runs failed soon after starting; waiting"/;
  const delays: Array<number | null> = [];
  for (let i = 0; i < 3; i++) {
    const started = Date.now();
    const sat = await spawnSatellite(t, opts(port));
    const exit = await sat.proc.exited;
    assert.equal(exit.code, 1, sat.logs());
    const line = sat.logs().split('\n').find((l) => backoffLine.test(l));
    delays.push(line ? (JSON.parse(line) as { delayMs: number }).delayMs : null);
    if (line) assert.ok(Date.now() - started >= (JSON.parse(line) as { delayMs: number }).delayMs, 'it really waited');
  }
  assert.deepEqual(delays, [null, 1000, 2000]);

  // Without systemd (no INVOCATION_ID) nothing waits, whatever the record says.
  const plain = await spawnSatellite(t, opts(port, false));
  assert.equal((await plain.proc.exited).code, 1);
  assert.ok(!backoffLine.test(plain.logs()), plain.logs());

  // The fault clears: the next start still waits (4 s), then serves; SIGTERM records a clean stop.
  blocker.close();
  await once(blocker, 'close');
  const healed = await startSatellite(t, { ...opts(port), readyTimeoutMs: 30_000 });
  assert.match(healed.logs(), /"delayMs":4000/);
  assert.equal((await healed.kill('SIGTERM')).code, 0);
  assert.equal(JSON.parse(await readFile(join(dataDir, RUN_STATE_FILE), 'utf8')).clean, true);
  const next = await startSatellite(t, opts(port));
  assert.ok(!backoffLine.test(next.logs()), next.logs());
  await next.stop();
});

test('Ground Control under systemd: the second quick failure in a row waits before starting', async (t) => {
  const { port } = await takePort(t);
  const dataDir = await makeTempDir(t, 'hs-backoff-gc-');
  const opts = {
    dataDir,
    env: { INVOCATION_ID: 'fedcba9876543210fedcba9876543210' },
    config: { api: { listen: { host: '127.0.0.1', port } }, restartBackoff: { baseSeconds: 1 } },
  };
  const first = await spawnGroundControl(t, opts);
  assert.equal((await first.proc.exited).code, 1, first.logs());
  assert.doesNotMatch(first.logs(), /restart back-off/);
  const second = await spawnGroundControl(t, opts);
  assert.equal((await second.proc.exited).code, 1, second.logs());
  assert.match(second.logs(), /"delayMs":1000,"msg":"restart back-off/);
});

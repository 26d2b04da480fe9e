import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { startSatellite } from '../helpers/satellite.ts';
import { startGroundControl } from '../helpers/groundcontrol.ts';
import { httpStatus } from '../helpers/process.ts';
import { SystemdNotifier } from '../../src/daemon/notify.ts';
import { startNotifySocket, type NotifyMessage } from './notify-socket.ts';

const isPing = (m: NotifyMessage) => m.fields.WATCHDOG === '1';
const pingsBetween = (all: NotifyMessage[], from: number, to: number) => all.filter((m) => isPing(m) && m.at >= from && m.at < to).length;

test('satellite under a notify socket: READY=1 once serving, steady WATCHDOG=1, none while the loop is stopped, STOPPING=1 on SIGTERM', async (t) => {
  const sock = await startNotifySocket(t);
  // 400 ms watchdog: a ping every 200 ms.
  const sat = await startSatellite(t, { env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '400000' } });
  const ready = await sock.waitFor((m) => m.fields.READY === '1');
  // Readiness comes after the registry listens: /v2/ answers by then.
  assert.equal(await httpStatus(`${sat.url}/v2/`), 200);
  assert.equal(Number(ready.fields.MAINPID), sat.proc.pid, 'MAINPID names the satellite process');
  assert.match(ready.fields.STATUS ?? '', /^serving on 127\.0\.0\.1:\d+; no desired state$/);
  const firstReady = sock.messages().findIndex((m) => m.fields.READY === '1');
  const starting = sock.messages().slice(0, firstReady);
  assert.ok(starting.some((m) => m.fields.EXTEND_TIMEOUT_USEC === '30000000'), 'start-up extends the start timeout');
  assert.ok(!starting.some(isPing), 'no watchdog ping before READY=1');

  // A long window: each ping spawns systemd-notify, which a loaded CI machine starts slowly, and
  // a ping is skipped while the previous one is still in flight.
  await sleep(3200);
  const now = Date.now();
  const steady = pingsBetween(sock.messages(), now - 3000, now);
  t.diagnostic(`${steady} pings in 3 s at a 200 ms interval`);
  assert.ok(steady >= 4, `only ${steady} watchdog pings in 3 s`);

  // A stopped process is what a hung event loop looks like from outside: the pings stop.
  process.kill(sat.proc.pid!, 'SIGSTOP');
  const stoppedAt = Date.now();
  await sleep(1500);
  const resumedAt = Date.now();
  process.kill(sat.proc.pid!, 'SIGCONT');
  // A helper already in flight when the loop stopped may still arrive.
  const whileStopped = pingsBetween(sock.messages(), stoppedAt + 300, resumedAt);
  assert.equal(whileStopped, 0, `${whileStopped} pings while the process was stopped`);
  await sock.waitFor((m) => isPing(m) && m.at > resumedAt, 5000);

  const before = sock.messages().length;
  const exit = await sat.kill('SIGTERM');
  assert.equal(exit.code, 0);
  const stopping = await sock.waitFor((m) => m.fields.STOPPING === '1', 5000, before);
  assert.match(stopping.fields.STATUS ?? '', /stopping \(SIGTERM\)/);
  const all = sock.messages();
  const after = all.slice(all.findIndex((m) => m.at === stopping.at) + 1);
  assert.ok(!after.some(isPing), `ping after STOPPING=1: ${JSON.stringify(sock.messages().slice(-8))}`);
});

test('without NOTIFY_SOCKET the notifier does nothing; a failing liveness check withholds pings', async (t) => {
  const log = pino({ level: 'silent' });
  const off = new SystemdNotifier({ log, env: { WATCHDOG_USEC: '400000' }, command: '/nonexistent/systemd-notify' });
  assert.equal(off.enabled, false);
  assert.equal(off.watchdogIntervalMs, undefined);
  await off.ready('x');
  await off.stopping();

  const sock = await startNotifySocket(t);
  const notifier = new SystemdNotifier({ log, env: { ...process.env, NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '200000' } });
  t.after(() => notifier.close());
  assert.equal(notifier.watchdogIntervalMs, 100);
  let healthy = true;
  await notifier.ready('ok', () => (healthy ? undefined : 'index unreadable'));
  await sock.waitFor(isPing, 5000);
  healthy = false;
  const sickFrom = sock.messages().length;
  await sock.waitFor((m) => m.fields.STATUS === 'unhealthy: index unreadable', 5000, sickFrom);
  const sickAt = Date.now();
  await sleep(600);
  assert.equal(pingsBetween(sock.messages(), sickAt, Date.now()), 0, 'no ping while unhealthy');
  healthy = true;
  await sock.waitFor((m) => isPing(m) && m.at > sickAt, 5000);
  const before = sock.messages().length;
  await notifier.stopping();
  await sock.waitFor((m) => m.fields.STOPPING === '1', 5000, before);
});

test('Ground Control under a notify socket: READY=1 once the API listens, pings, STOPPING=1', async (t) => {
  const sock = await startNotifySocket(t);
  const gc = await startGroundControl(t, { env: { NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '400000' } });
  const ready = await sock.waitFor((m) => m.fields.READY === '1');
  assert.equal(Number(ready.fields.MAINPID), gc.proc.pid);
  assert.match(ready.fields.STATUS ?? '', /^API on :\d+; MQTT embedded on :\d+$/);
  assert.equal((await gc.api('GET', '/api/v1/satellites')).status, 200);
  const readyAt = Date.now();
  await sleep(1200);
  assert.ok(pingsBetween(sock.messages(), readyAt, Date.now()) >= 3);
  const before = sock.messages().length;
  const exit = await gc.kill('SIGTERM');
  assert.equal(exit.code, 0);
  await sock.waitFor((m) => m.fields.STOPPING === '1', 5000, before);
});

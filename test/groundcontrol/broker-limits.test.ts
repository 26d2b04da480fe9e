import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { addAndRegister, connectSatellite, eventually, startGroundControl, type GroundControl } from '../helpers/groundcontrol.ts';

// The attacker comes from other loopback addresses than the legitimate clients (127.0.0.1), as a
// host on the LAN would: per-address caps must not lock everyone else out.
const ATTACKER = '127.0.0.2';

/** VmRSS of a process in MiB. */
async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
  assert.ok(kb > 0, 'VmRSS readable');
  return kb / 1024;
}

/** Samples RSS every 100 ms until stopped; resolves with the highest value seen. */
function watchRss(pid: number): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const done = (async () => {
    while (running) {
      peak = Math.max(peak, await rssMiB(pid).catch(() => 0));
      await sleep(100);
    }
    return Math.max(peak, await rssMiB(pid));
  })();
  return {
    stop: () => {
      running = false;
      return done;
    },
  };
}

/** MQTT 3.1.1 fixed header of a CONNECT declaring `length` remaining bytes [MQTT-2.2.3], then the variable header. */
function connectHeader(length: number): Buffer {
  const len: number[] = [];
  let n = length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    len.push(byte);
  } while (n > 0);
  // "MQTT", level 4, clean session, keep-alive 60
  return Buffer.from([0x10, ...len, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c]);
}

interface RawConn {
  socket: Socket;
  /** ms from TCP connect to the server closing it; undefined while open. */
  closedAfterMs: number | undefined;
  closed: Promise<void>;
}

/** Opens a raw TCP connection from `from`, writes `bytes` once connected and leaves it there. */
async function rawConnect(port: number, from: string, bytes: Buffer): Promise<RawConn> {
  const socket = connect({ host: '127.0.0.1', port, localAddress: from });
  socket.on('error', () => undefined); // the server resets writers it cut off
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const started = performance.now();
  const conn: RawConn = {
    socket,
    closedAfterMs: undefined,
    closed: new Promise<void>((resolve) =>
      socket.once('close', () => {
        conn.closedAfterMs = performance.now() - started;
        resolve();
      }),
    ),
  };
  socket.resume(); // read (and ignore) whatever the server sends
  if (bytes.length > 0) socket.write(bytes);
  return conn;
}

async function openMany(gc: GroundControl, count: number, from: string, bytes: Buffer): Promise<RawConn[]> {
  const conns: RawConn[] = [];
  for (let i = 0; i < count; i++) conns.push(await rawConnect(gc.brokerPort!, from, bytes));
  return conns;
}

function destroyAll(conns: RawConn[]): void {
  for (const c of conns) c.socket.destroy();
}

test('embedded broker: what an unauthenticated client may hold (issue 10 item 5)', async (t) => {
  const deadlineSeconds = 3;
  const gc = await startGroundControl(t, {
    config: { broker: { limits: { connectTimeoutSeconds: deadlineSeconds, maxPendingPerAddress: 200, logIntervalSeconds: 1 } } },
  });
  const pid = gc.proc.pid!;
  const reg = await addAndRegister(gc, 'legit');
  // Warm up the code paths a login takes, so they do not count as the attack's memory.
  await (await connectSatellite(t, gc.mqttUrl!, reg, { clean: true })).endAsync();

  await t.test('120 CONNECTs declaring 2 MiB are cut at their fixed header; RSS stays flat', async () => {
    const before = await rssMiB(pid);
    const rss = watchRss(pid);
    // Each declares 2 MiB and sends 1 MiB of it: without a limit before login, aedes buffers it all.
    const bytes = Buffer.concat([connectHeader(2 * 1024 * 1024), Buffer.alloc(1024 * 1024, 0x61)]);
    const conns = await openMany(gc, 120, ATTACKER, bytes);
    t.after(() => destroyAll(conns));
    // A satellite still logs in while they are being cut.
    const during = await connectSatellite(t, gc.mqttUrl!, reg, { clean: true });
    assert.ok(during.connected);
    await during.endAsync();
    await Promise.race([Promise.all(conns.map((c) => c.closed)), sleep(10_000)]);
    const open = conns.filter((c) => c.closedAfterMs === undefined).length;
    assert.equal(open, 0, `${open} of 120 oversized connections still open after 10 s`);
    const slowest = Math.max(...conns.map((c) => c.closedAfterMs!));
    assert.ok(slowest < (deadlineSeconds - 1) * 1000, `cut at the header, not at the connect deadline (slowest ${Math.round(slowest)} ms)`);
    await sleep(500);
    const peak = await rss.stop();
    t.diagnostic(`RSS before ${before.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB (+${(peak - before).toFixed(1)})`);
    assert.ok(peak - before < 20, `RSS rose by ${(peak - before).toFixed(1)} MiB (from ${before.toFixed(1)} to ${peak.toFixed(1)})`);
    const line = await gc.waitForLog(/"reasons":\{"PACKET_TOO_LARGE":120\}.*"msg":"mqtt connections refused or dropped"/, 5000);
    assert.match(line.input, /"127\.0\.0\.2":120/);
  });

  await t.test('120 incomplete small CONNECTs are dropped at the connect deadline; a satellite logs in meanwhile', async () => {
    const before = await rssMiB(pid);
    const rss = watchRss(pid);
    // Under the size limit: declares 4,000 bytes, sends 2,000, then stalls.
    const bytes = Buffer.concat([connectHeader(4000), Buffer.alloc(2000, 0x61)]);
    const conns = await openMany(gc, 120, ATTACKER, bytes);
    t.after(() => destroyAll(conns));
    const during = await connectSatellite(t, gc.mqttUrl!, reg, { clean: true });
    assert.ok(during.connected, 'a satellite logs in while 120 stalled connections are pending');
    await during.endAsync();
    await Promise.race([Promise.all(conns.map((c) => c.closed)), sleep((deadlineSeconds + 10) * 1000)]);
    const open = conns.filter((c) => c.closedAfterMs === undefined).length;
    assert.equal(open, 0, `${open} of 120 stalled connections still open ${deadlineSeconds + 10} s later`);
    const times = conns.map((c) => c.closedAfterMs!);
    // Loaded 2-core box: allow the timer to fire late, never early.
    assert.ok(Math.min(...times) >= deadlineSeconds * 1000 - 500, `none closed before the deadline (earliest ${Math.round(Math.min(...times))} ms)`);
    assert.ok(Math.max(...times) <= deadlineSeconds * 1000 + 3000, `all closed at the deadline (latest ${Math.round(Math.max(...times))} ms)`);
    const peak = await rss.stop();
    t.diagnostic(`RSS before ${before.toFixed(1)} MiB, peak ${peak.toFixed(1)} MiB (+${(peak - before).toFixed(1)}); closed after ${Math.round(Math.min(...times))}-${Math.round(Math.max(...times))} ms`);
    assert.ok(peak - before < 20, `RSS rose by ${(peak - before).toFixed(1)} MiB`);
    await gc.waitForLog(/"reasons":\{"CONNECT_TIMEOUT":120\}.*"msg":"mqtt connections refused or dropped"/, 5000);
    // And after the attack.
    const after = await connectSatellite(t, gc.mqttUrl!, reg);
    assert.ok(after.connected);
  });
});

test('embedded broker: pending connections beyond the per-address and total caps are closed at once', async (t) => {
  const gc = await startGroundControl(t, {
    config: { broker: { limits: { maxPendingPerAddress: 5, maxPendingConnections: 12, connectTimeoutSeconds: 60, logIntervalSeconds: 1 } } },
  });
  const reg = await addAndRegister(gc, 'legit');
  const conns: RawConn[] = [];
  t.after(() => destroyAll(conns));

  // Eight silent connections from one address: five are let in, three closed at once.
  conns.push(...(await openMany(gc, 8, ATTACKER, Buffer.alloc(0))));
  await eventually(async () => conns.filter((c) => c.closedAfterMs !== undefined).length >= 3, 5000, 'three refused');
  await sleep(500);
  assert.deepEqual(
    conns.map((c) => c.closedAfterMs !== undefined),
    [false, false, false, false, false, true, true, true],
    'the sixth and later are refused',
  );
  for (const c of conns.slice(5)) assert.ok(c.closedAfterMs! < 1000, `refused at once (after ${Math.round(c.closedAfterMs!)} ms)`);

  // Another address is not affected; a satellite logs in; a logged-in connection is not pending.
  const sat = await connectSatellite(t, gc.mqttUrl!, reg);
  assert.ok(sat.connected);
  const other = await openMany(gc, 5, '127.0.0.3', Buffer.alloc(0));
  conns.push(...other);
  await sleep(300);
  assert.ok(other.every((c) => c.closedAfterMs === undefined), 'five from a second address are let in');

  // Ten pending now; the total cap (12) refuses the thirteenth whatever its address.
  const more = await openMany(gc, 3, '127.0.0.4', Buffer.alloc(0));
  conns.push(...more);
  await eventually(async () => more[2]!.closedAfterMs !== undefined, 5000, 'the thirteenth refused');
  await sleep(300);
  assert.deepEqual(more.map((c) => c.closedAfterMs !== undefined), [false, false, true]);

  // Summarised, not one line per refusal.
  await gc.waitForLog(/"MAX_PENDING_PER_ADDRESS":3\b.*"msg":"mqtt connections refused or dropped"/, 5000);
  await gc.waitForLog(/"MAX_PENDING_CONNECTIONS":1\b.*"msg":"mqtt connections refused or dropped"/, 5000);

  // Once the pending ones go, new connections are let in again.
  destroyAll(conns);
  await eventually(async () => {
    const [c] = await openMany(gc, 1, ATTACKER, Buffer.alloc(0));
    await sleep(200);
    const letIn = c!.closedAfterMs === undefined;
    c!.socket.destroy();
    return letIn;
  }, 5000, 'a pending slot free again');
});

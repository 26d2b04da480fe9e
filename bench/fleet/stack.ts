import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CpuMeter, type CpuSplit } from '../lib/proc-stats.ts';
import type { Teardown } from '../../test/helpers/cleanup.ts';
import { startGroundControl, type GroundControl } from '../../test/helpers/groundcontrol.ts';
import { externalBrokerConfig, startMosquittoForGroundControl, type Mosquitto } from '../../test/helpers/mosquitto.ts';
import type { SimSatellite } from './ipc.ts';

const GC_USER = 'groundcontrol';
const GC_PASSWORD = 'bench-fleet-gc-broker-password';
const GC = { username: GC_USER, password: GC_PASSWORD };
export const SITE = 'bench';
/** The site of satellite i when the fleet is spread over `sites` sites (one: all at SITE). */
export const siteOf = (i: number, sites: number) => (sites === 1 ? SITE : `${SITE}-${String(i % sites).padStart(3, '0')}`);
export const GROUP = 'bench';
/** Put into every desired state; nothing listens there and nobody syncs. */
export const UPSTREAM_URL = 'http://127.0.0.1:5000';

export interface Stack {
  mosq: Mosquitto;
  gc: GroundControl;
  gcPid: number;
  mosqPid: number;
  /** mosquitto's "Outgoing messages are being dropped for client ..." notices so far, by client. */
  mosqDrops: Map<string, number>;
}

/**
 * mosquitto with the documented password file, ACL and large-fleet settings
 * (test/helpers/mosquitto.ts, mosquittoFleetSettings), then Ground Control in external-broker mode
 * keeping that password file and reloading mosquitto with SIGHUP, exactly as docs/groundcontrol.md
 * describes.
 */
export async function startStack(t: Teardown, opts: { mosquittoConf: string[]; gcEnv: Record<string, string> }): Promise<Stack> {
  const mosq = await startMosquittoForGroundControl(t, GC);
  // The helper saves mosquitto's database every second (for its restart tests); the documented
  // production config keeps mosquitto's default (30 min). Restart it with that, plus any --mosquitto-conf.
  await mosq.stop();
  const confFile = join(mosq.dir, 'mosquitto.conf');
  const conf = (await readFile(confFile, 'utf8')).split('\n').filter((l) => !l.startsWith('autosave_interval'));
  await writeFile(confFile, [...conf.filter(Boolean), ...opts.mosquittoConf, ''].join('\n'));
  await mosq.restart();
  // Counted as they come: the helper keeps only the last lines, and every login logs two.
  const mosqDrops = new Map<string, number>();
  mosq.proc.onLine((line) => {
    const m = /Outgoing messages are being dropped for client (\S+?)\.?$/.exec(line);
    if (m) mosqDrops.set(m[1]!, (mosqDrops.get(m[1]!) ?? 0) + 1);
  });

  const gc = await startGroundControl(t, {
    config: {
      log: { level: 'info' },
      upstream: { url: UPSTREAM_URL },
      broker: externalBrokerConfig(mosq, GC),
    },
    env: opts.gcEnv,
    readyTimeoutMs: 30_000,
  });
  await gc.waitForLog(/"msg":"broker connected"/, 15_000);
  return { mosq, gc, gcPid: gc.proc.pid!, mosqPid: mosq.proc.pid!, mosqDrops };
}

/** Runs fn over items with at most `limit` in flight; results in input order. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

export interface Enrolment {
  satellites: SimSatellite[];
  createMs: number;
  registerMs: number;
  /** Who used the CPU while the satellites registered (pids: Ground Control, mosquitto). */
  registerCpu: CpuSplit;
}

/**
 * N satellites at one site, or spread over `sites`, through the API (POST /api/v1/satellites), each registered with its
 * one-time token (POST /api/v1/register) for its MQTT credentials. Not timed as part of a round.
 */
export async function enrol(gc: GroundControl, n: number, sites: number, concurrency: number, pids: number[], progress: (msg: string) => void): Promise<Enrolment> {
  const t0 = Date.now();
  const tokens = await pool(Array.from({ length: n }, (_, i) => i), concurrency, async (i) => {
    const name = `bench-${String(i).padStart(5, '0')}`;
    const r = await gc.api('POST', '/api/v1/satellites', { name, site: siteOf(i, sites) });
    if (r.status !== 201) throw new Error(`create satellite ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    return { name, token: r.body.registration.token as string };
  });
  const t1 = Date.now();
  progress(`created ${n} satellites in ${((t1 - t0) / 1000).toFixed(1)} s; registering them`);
  let done = 0;
  const meter = new CpuMeter(pids);
  const satellites = await pool(tokens, concurrency, async ({ name, token }) => {
    const r = await gc.api('POST', '/api/v1/register', { token, hostname: name, version: 'bench' }, null);
    if (r.status !== 200) throw new Error(`register ${name}: ${r.status} ${JSON.stringify(r.body)}`);
    if (++done % 1000 === 0) progress(`registered ${done}/${n}`);
    return { id: r.body.satelliteId as string, password: r.body.mqtt.password as string };
  });
  const registerMs = Date.now() - t1;
  return { satellites, createMs: t1 - t0, registerMs, registerCpu: meter.stop() };
}

#!/usr/bin/env node
// Idle memory of the release bundle as shipped (the release wrapper's node flags and environment):
// with the default config, and with sync and control configured and connected to Ground Control
// (an image synced, then left alone); then whether RSS comes back under the memory watchdog's
// resume mark once a load that raised it is over. Results: docs/benchmarks.md ("Memory"). Linux only.
import { rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defer } from '../test/helpers/cleanup.ts';
import { startDockerRegistry } from '../test/helpers/docker-registry.ts';
import { makeImage } from '../test/helpers/fixtures.ts';
import { startGroundControl } from '../test/helpers/groundcontrol.ts';
import { externalBrokerConfig, startMosquittoForGroundControl } from '../test/helpers/mosquitto.ts';
import { REPO_ROOT, startSatellite, type Satellite } from '../test/helpers/satellite.ts';
import { skopeoCopy } from '../test/helpers/skopeo.ts';
import { makeTempDir } from '../test/helpers/tmp.ts';
import { VERSION } from '../src/version.ts';
import { Commands } from './lib/commands.ts';
import { machineInfo } from './lib/machine.ts';
import { backgroundLoad, readMem, resetPeak, type MemStatus } from './lib/proc-stats.ts';
import { satelliteRuntime } from './lib/serve-options.ts';
import { runBenchScript } from './lib/script-main.ts';
import { fmt, formatTable, mib } from './lib/table.ts';
import type { ScriptTeardown } from './lib/teardown.ts';
import { runWrk } from './lib/wrk.ts';

const MiB = 1024 * 1024;
const USAGE = `usage: node bench/idle.ts [options]

Idle RSS of the satellite bundle as shipped: (1) default config; (2) sync and control configured and
connected (Ground Control with its embedded broker, or mosquitto), one small image synced; then
(3) 32 wrk connections on a 1 MiB blob for --load-sec and RSS each second for --recover-sec after,
against the memory watchdog's soft limit and resume mark (default: the raspberry-pi profile's).

  --settle S        seconds left alone before idle is read (default 15)
  --mosquitto       Ground Control on mosquitto instead of its embedded broker
  --load-sec S      wrk duration of the load phase (default 10; 0 = skip the load phase)
  --recover-sec S   seconds of RSS readings after the load (default 60)
  --soft-mib N      memory.softLimitBytes of the satellite in (2)/(3) (default 120)
  --resume-mib N    memory.resumeBytes (default 100)
  --node-args A     extra node flags for the satellite (after the shipped ones)
  --satellite-env NAME=VALUE   extra environment for the satellite (repeatable)
  --node-defaults   without the release wrapper's flags and environment`;

interface Options {
  settleSec: number;
  mosquitto: boolean;
  loadSec: number;
  recoverSec: number;
  softBytes: number;
  resumeBytes: number;
  nodeArgs: string[];
  satelliteEnv: Record<string, string>;
}

function whole(text: string | undefined, name: string, min: number, max: number, dflt: number): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number in ${min}..${max}, got ${text}`);
  return n;
}

function parse(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      settle: { type: 'string' },
      mosquitto: { type: 'boolean', default: false },
      'load-sec': { type: 'string' },
      'recover-sec': { type: 'string' },
      'soft-mib': { type: 'string' },
      'resume-mib': { type: 'string' },
      'node-args': { type: 'string' },
      'satellite-env': { type: 'string', multiple: true },
      'node-defaults': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const softMib = whole(values['soft-mib'], '--soft-mib', 32, 4096, 120);
  const resumeMib = whole(values['resume-mib'], '--resume-mib', 16, softMib - 1, Math.min(100, softMib - 1));
  return {
    settleSec: whole(values.settle, '--settle', 1, 600, 15),
    mosquitto: values.mosquitto,
    loadSec: whole(values['load-sec'], '--load-sec', 0, 120, 10),
    recoverSec: whole(values['recover-sec'], '--recover-sec', 5, 900, 60),
    softBytes: softMib * MiB,
    resumeBytes: resumeMib * MiB,
    ...satelliteRuntime(values['node-defaults'], values['node-args'], values['satellite-env']),
  };
}

const t0 = Date.now();
const progress = (msg: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Five readings a second apart after `settleSec`; the median by RSS. */
async function idleReading(pid: number, settleSec: number): Promise<MemStatus> {
  await sleep(settleSec * 1000);
  const readings: MemStatus[] = [];
  for (let i = 0; i < 5; i++) {
    readings.push(readMem(pid));
    await sleep(1000);
  }
  return readings.sort((a, b) => a.rssKiB - b.rssKiB)[2]!;
}

const row = (name: string, m: MemStatus): string[] => [name, mib(m.rssKiB), mib(m.rssAnonKiB), mib(m.rssFileKiB), String(m.threads)];

async function run(t: ScriptTeardown, opts: Options): Promise<string> {
  const info = machineInfo(REPO_ROOT, VERSION);
  info.push(`satellite: esbuild bundle (node build.mjs); node flags: ${opts.nodeArgs.join(' ') || '(none)'}`);
  for (const [name, value] of Object.entries(opts.satelliteEnv)) info.push(`satellite env: ${name}=${value}`);
  info.push(`load before the run: ${fmt((await backgroundLoad()) * 100)}% of all cores busy (1 s sample), loadavg ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);
  for (const line of info) progress(line);

  const outdir = join(REPO_ROOT, 'dist', `bench-idle-${process.pid}`);
  defer(t, () => rm(outdir, { recursive: true, force: true }));
  const { bundle } = await import('../build.mjs');
  await bundle(outdir);
  const entry = join(outdir, 'satellite.mjs');
  const runtime = { entry, nodeArgs: opts.nodeArgs, env: opts.satelliteEnv };
  const rows: string[][] = [];

  progress('(1) default config');
  const plain = await startSatellite(t, { ...runtime });
  rows.push(row('default config', await idleReading(plain.proc.pid!, opts.settleSec)));
  await plain.stop(10_000);

  progress('(2) upstream with one image, Ground Control, a satellite with sync and control');
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-bench-idle-');
  const image = await makeImage(layout, { tag: 'v1', seed: 'bench/idle', layerSizes: [MiB, 4 * MiB] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/apps/idle:v1`);
  const gcUser = { username: 'groundcontrol', password: 'bench-idle-broker-secret' };
  const broker = opts.mosquitto ? { broker: externalBrokerConfig(await startMosquittoForGroundControl(t, gcUser), gcUser) } : {};
  const gc = await startGroundControl(t, { config: { upstream: { url: `http://${upstream.host}` }, ...broker }, ...(opts.mosquitto ? { embedded: false } : {}) });
  const created = await gc.api<{ registration: { token: string } }>('POST', '/api/v1/satellites', { name: 'idle-1', site: 'bench' });
  await gc.api('PUT', '/api/v1/groups/edge', { name: 'edge', images: [{ repository: 'apps/idle', tags: ['v1'] }] });
  await gc.api('POST', '/api/v1/assignments', { group: 'edge', site: 'bench' });
  const sat: Satellite = await startSatellite(t, {
    ...runtime,
    config: {
      control: { groundControlUrl: gc.url, registrationToken: created.body.registration.token },
      sync: { intervalSeconds: 3600 },
      memory: { softLimitBytes: opts.softBytes, resumeBytes: opts.resumeBytes },
    },
  });
  await sat.waitForLog(/"msg":"connected to broker"/, 60_000);
  await sat.waitForLog(/"msg":"sync finished".*"result":"ok"|"result":"ok".*"msg":"sync finished"/, 120_000);
  const pid = sat.proc.pid!;
  rows.push(row(`sync + control connected (${opts.mosquitto ? 'mosquitto' : 'embedded broker'}), 1 image synced`, await idleReading(pid, opts.settleSec)));
  const lines = [...info.map((l) => `- ${l}`), '', formatTable(['idle (median of 5 readings)', 'RSS (MiB)', 'anon', 'file', 'threads'], rows)];

  if (opts.loadSec > 0) {
    const blob = image.layers[0]!;
    const url = `${sat.url}/v2/apps/idle/blobs/${blob.digest}`;
    const probe = await fetch(url);
    await probe.arrayBuffer();
    if (probe.status !== 200) throw new Error(`GET ${url}: ${probe.status}`);
    progress(`(3) wrk -c32 for ${opts.loadSec} s on the 1 MiB blob, then ${opts.recoverSec} s idle`);
    resetPeak(pid);
    const wrk = await runWrk(new Commands(t), { url, threads: 2, connections: 32, durationSec: opts.loadSec });
    const peak = readMem(pid);
    // The watchdog's state each second from the status endpoint (its log lines say the same).
    type Memory = { state: string; episodes: number; shedRequests: number };
    const memoryNow = async () => ((await (await fetch(`${sat.url}/_satellite/status`)).json()) as { memory: Memory }).memory;
    const during = await memoryNow();
    const after: MemStatus[] = [];
    let resumedAt = -1;
    for (let s = 1; s <= opts.recoverSec; s++) {
      await sleep(1000);
      after.push(readMem(pid));
      if (resumedAt < 0 && during.state === 'shedding' && (await memoryNow()).state !== 'shedding') resumedAt = s;
    }
    const status = { memory: await memoryNow() };
    const under = after.findIndex((m) => m.rssKiB * 1024 < opts.resumeBytes);
    const at = (s: number) => after[Math.min(s, after.length) - 1]!;
    const marks = [1, 5, 15, 30, 60, 120, 300, 600].filter((s) => s <= opts.recoverSec);
    const shedding = during.state === 'shedding' ? `shedding when the load ended (${during.shedRequests} blob GETs answered 429), ${resumedAt < 0 ? 'still shedding at the end' : `serving again ${resumedAt} s later`}` : `not shedding when the load ended (state ${during.state})`;
    lines.push(
      '',
      `Load: ${fmt(wrk.requestsPerSec)} req/s, ${wrk.non2xx} non-2xx (429 while shedding), peak RSS ${mib(peak.hwmKiB)} MiB; soft limit ${fmt(opts.softBytes / MiB)} MiB, resume ${fmt(opts.resumeBytes / MiB)} MiB; ` +
        `${shedding}; RSS first under the resume mark ${under < 0 ? 'never' : `${under + 1} s`} after the load.`,
      '',
      formatTable(['after the load', 'RSS (MiB)', 'anon', 'file', 'threads'], marks.map((s) => row(`${s} s`, at(s)))),
      '',
      `The watchdog at the end (status endpoint): ${JSON.stringify(status.memory)}`,
    );
  }
  await sat.stop(15_000);
  return lines.join('\n');
}

process.exitCode = await runBenchScript<Options>({
  usage: USAGE,
  parse,
  budgetSec: (o) => 300 + o.settleSec * 2 + o.loadSec + o.recoverSec,
  run,
  progress,
});

#!/usr/bin/env node
// Serving benchmark: the satellite against distribution 2.8 (Debian docker-registry), side by side
// in one run, on the same content pushed over HTTP to both. Clients are wrk and curl processes, so
// their CPU shows up in the machine's figures and their memory never in the servers'. Results and
// how to read them: docs/benchmarks.md. Linux only (/proc).
import { rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { basename, join } from 'node:path';
import { defer } from '../test/helpers/cleanup.ts';
import { startDockerRegistry } from '../test/helpers/docker-registry.ts';
import { makeImage, MediaTypes, type ImageFixture, type LayerBlob } from '../test/helpers/fixtures.ts';
import { REPO_ROOT, startSatellite } from '../test/helpers/satellite.ts';
import { makeTempDir } from '../test/helpers/tmp.ts';
import { VERSION } from '../src/version.ts';
import { Commands } from './lib/commands.ts';
import { curlParallel } from './lib/curl.ts';
import { expectContent, pushBlobFile, pushManifest } from './lib/http.ts';
import { machineInfo } from './lib/machine.ts';
import { backgroundLoad, CpuMeter, exeOf, PeakTracker, readMem, RssSampler, type MemStatus } from './lib/proc-stats.ts';
import { parseOptions, rateBytes, USAGE, type Options } from './lib/serve-options.ts';
import { report, type Best, type CpuShare, type PhaseName, type ServerResults, type Throughput } from './lib/serve-report.ts';
import { fmt, mib } from './lib/table.ts';
import type { ScriptTeardown } from './lib/teardown.ts';
import { runBenchScript } from './lib/script-main.ts';
import { runWrk } from './lib/wrk.ts';

const MiB = 1024 * 1024;
const REPO = 'bench/serve';
const TAG = 'v1';
const MANIFEST_ACCEPT = `${MediaTypes.manifest}, application/vnd.docker.distribution.manifest.v2+json`;

interface Server {
  name: string;
  url: string;
  /** The server process itself (the helpers' setpriv wrapper execs into it). */
  pid: number;
  results: Partial<ServerResults> & { mem: PeakTracker };
}

const t0 = Date.now();
const progress = (msg: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);

function cpuShare(meter: CpuMeter, pid: number): CpuShare {
  const { cores, ...rest } = meter.stop();
  return { server: cores.get(pid) ?? Number.NaN, ...rest };
}

const phase = <T>(s: Server, name: PhaseName, fn: () => Promise<T>): Promise<T> => s.results.mem.phase(name, fn);

/** The best round by `value`, keeping every round's figure. */
function best<T>(runs: T[], value: (run: T) => number): Best<T> {
  const top = runs.reduce((a, b) => (value(b) > value(a) ? b : a));
  return { ...top, all: runs.map(value) };
}

/** `fn` for each server in turn, `rounds` times over; each server's results in round order. */
async function alternate<T>(servers: Server[], rounds: number, fn: (s: Server, round: number) => Promise<T>): Promise<Map<Server, T[]>> {
  const results = new Map<Server, T[]>(servers.map((s) => [s, []]));
  for (let round = 1; round <= rounds; round++) {
    for (const s of servers) results.get(s)!.push(await fn(s, round));
  }
  return results;
}

/** A wrk run (after a warm-up for JIT and page cache when asked); any error response fails it. */
async function wrkPhase(cmds: Commands, opts: Options, s: Server, warmUp: boolean, url: string, headers?: Record<string, string>) {
  const base = { url, threads: 2, connections: 32, ...(headers ? { headers } : {}) };
  if (warmUp) await runWrk(cmds, { ...base, durationSec: opts.warmupSec });
  const meter = new CpuMeter([s.pid]);
  const result = await runWrk(cmds, { ...base, durationSec: opts.durationSec });
  const cpu = cpuShare(meter, s.pid);
  if (result.non2xx > 0 || Object.values(result.socketErrors).some((n) => n > 0)) {
    throw new Error(`${s.name}: wrk ${url}: ${result.non2xx} error responses, socket errors ${JSON.stringify(result.socketErrors)}`);
  }
  progress(`${s.name}: ${fmt(result.requestsPerSec)} req/s, p50 ${fmt(result.latencyMs.p50, 1)} ms, p99 ${fmt(result.latencyMs.p99, 1)} ms, server ${fmt(cpu.server, 2)} cores`);
  return { ...result, cpu };
}

/** `reps` times `clients` parallel curl downloads of the large blob; MB/s over the transfer time. */
async function streams(cmds: Commands, s: Server, url: string, size: number, clients: number, reps: number): Promise<Throughput> {
  const meter = new CpuMeter([s.pid]);
  let bytes = 0;
  let seconds = 0;
  for (let i = 0; i < reps; i++) {
    const round = await curlParallel(cmds, url, clients, size, { maxTimeSec: 120 });
    bytes += round.bytes;
    // One stream: curl's own transfer time, without process start-up.
    seconds += clients === 1 ? round.downloads[0]!.seconds : round.wallSec;
  }
  return { mbps: bytes / seconds / 1e6, cpu: cpuShare(meter, s.pid) };
}

/** 64 curl processes reading the large blob at a limited rate: 64 open streams under backpressure. */
async function slowStreams(cmds: Commands, opts: Options, s: Server, url: string, size: number) {
  // Bounded: three times the time at the limited rate, plus a margin for a server that cannot keep up.
  const maxTimeSec = Math.ceil((size / rateBytes(opts.slowRate)) * 3) + 60;
  const sampler = new RssSampler([s.pid], 100);
  const meter = new CpuMeter([s.pid]);
  let sampled: MemStatus | undefined;
  let round;
  try {
    round = await curlParallel(cmds, url, opts.slowClients, size, { maxTimeSec, limitRate: opts.slowRate });
  } finally {
    sampled = sampler.stop().get(s.pid);
  }
  return {
    mbps: round.bytes / round.wallSec / 1e6,
    cpu: cpuShare(meter, s.pid),
    wallSec: round.wallSec,
    sampled,
    perClientMBps: round.downloads.reduce((sum, d) => sum + d.bytes / d.seconds, 0) / round.downloads.length / 1e6,
  };
}

async function pushImage(s: Server, layout: string, image: ImageFixture): Promise<void> {
  for (const layer of image.layers) await pushBlobFile(s.url, REPO, layer.path, layer.digest, layer.size);
  // writeImage stored the config as a blob of the layout.
  const configFile = join(layout, 'blobs', 'sha256', image.configDigest.slice('sha256:'.length));
  await pushBlobFile(s.url, REPO, configFile, image.configDigest, image.config.length);
  await pushManifest(s.url, REPO, TAG, image.manifest, image.mediaType);
}

/** Every measurement runs on one server, then the other, so they never compete with each other. */
async function measure(cmds: Commands, opts: Options, servers: Server[], layout: string, image: ImageFixture): Promise<void> {
  const [small, large] = image.layers as [LayerBlob, LayerBlob];
  const blobUrl = (s: Server, digest: string) => `${s.url}/v2/${REPO}/blobs/${digest}`;
  const manifestUrl = (s: Server) => `${s.url}/v2/${REPO}/manifests/${TAG}`;
  const largeMiB = fmt(large.size / MiB);

  for (const s of servers) {
    progress(`${s.name}: push ${image.layers.length} layers, config and manifest over HTTP`);
    const started = Date.now();
    await phase(s, 'push', () => pushImage(s, layout, image));
    s.results.pushSec = (Date.now() - started) / 1000;
    // The same bytes come back from both before anything is timed.
    await expectContent(manifestUrl(s), image.manifestDigest, image.size, { Accept: MANIFEST_ACCEPT });
    await expectContent(blobUrl(s, small.digest), small.digest, small.size);
    await phase(s, 'verify', () => expectContent(blobUrl(s, large.digest), large.digest, large.size));
  }
  const rounds = opts.rounds;
  const blob = await alternate(servers, rounds, (s, round) => {
    progress(`${s.name}: wrk GET ${fmt(small.size / MiB, 2)} MiB blob, 32 connections, ${opts.durationSec} s (round ${round}/${rounds})`);
    return phase(s, 'blob', () => wrkPhase(cmds, opts, s, round === 1, blobUrl(s, small.digest)));
  });
  const manifest = await alternate(servers, rounds, (s, round) => {
    progress(`${s.name}: wrk GET manifest by tag, 32 connections, ${opts.durationSec} s (round ${round}/${rounds})`);
    return phase(s, 'manifest', () => wrkPhase(cmds, opts, s, round === 1, manifestUrl(s), { Accept: MANIFEST_ACCEPT }));
  });
  const single = await alternate(servers, rounds, (s, round) => {
    progress(`${s.name}: ${opts.singleReps} × 1 stream of the ${largeMiB} MiB blob (round ${round}/${rounds})`);
    return phase(s, 'single', () => streams(cmds, s, blobUrl(s, large.digest), large.size, 1, opts.singleReps));
  });
  const parallel = await alternate(servers, rounds, (s, round) => {
    progress(`${s.name}: ${opts.parallelReps} × ${opts.parallelClients} parallel streams of the ${largeMiB} MiB blob (round ${round}/${rounds})`);
    return phase(s, 'parallel', () => streams(cmds, s, blobUrl(s, large.digest), large.size, opts.parallelClients, opts.parallelReps));
  });
  for (const s of servers) {
    s.results.blob = best(blob.get(s)!, (r) => r.requestsPerSec);
    s.results.manifest = best(manifest.get(s)!, (r) => r.requestsPerSec);
    s.results.single = best(single.get(s)!, (r) => r.mbps);
    s.results.parallel = best(parallel.get(s)!, (r) => r.mbps);
    progress(`${s.name}: 1 stream ${single.get(s)!.map((r) => fmt(r.mbps)).join(', ')} MB/s; ${opts.parallelClients} streams ${parallel.get(s)!.map((r) => fmt(r.mbps)).join(', ')} MB/s`);
  }
  // Last, for the memory target: VmHWM is reset before the phase, so its peak is the phase's own.
  for (const s of servers) {
    progress(`${s.name}: ${opts.slowClients} concurrent downloads of the ${largeMiB} MiB blob at ${opts.slowRate}B/s per client`);
    const slow = await phase(s, 'slow', () => slowStreams(cmds, opts, s, blobUrl(s, large.digest), large.size));
    s.results.slow = slow;
    const mem = s.results.mem.phases.get('slow')!;
    if (!mem.exact) progress(`${s.name}: the kernel refused to reset VmHWM: phase peaks are peaks so far`);
    progress(`${s.name}: ${fmt(slow.wallSec, 1)} s, VmHWM ${mib(mem.peakKiB)} MiB, largest VmRSS sampled ${mib(slow.sampled?.rssKiB ?? Number.NaN)} MiB`);
  }
  for (const s of servers) s.results.final = readMem(s.pid);
}

/** The satellite from source (as `npm start` runs it) or from a fresh esbuild bundle. */
async function satelliteEntry(t: ScriptTeardown, opts: Options): Promise<string | undefined> {
  if (!opts.bundle) return undefined;
  // Inside the repository: the bundle resolves its external native modules (lmdb) from node_modules.
  const outdir = join(REPO_ROOT, 'dist', `bench-${process.pid}`);
  defer(t, () => rm(outdir, { recursive: true, force: true }));
  const { bundle } = await import('../build.mjs');
  await bundle(outdir);
  return join(outdir, 'satellite.mjs');
}

async function run(t: ScriptTeardown, opts: Options): Promise<string> {
  const info = machineInfo(REPO_ROOT, VERSION);
  if (opts.bundle) info.push('satellite: esbuild bundle (node build.mjs)');
  info.push(`satellite node flags: ${opts.nodeArgs.join(' ') || '(none)'}`);
  if (Object.keys(opts.satelliteConfig).length > 0) info.push(`satellite config: ${JSON.stringify(opts.satelliteConfig)}`);
  for (const [name, value] of Object.entries(opts.satelliteEnv)) info.push(`satellite env: ${name}=${value}`);
  const background = await backgroundLoad();
  info.push(`load before the run: ${fmt(background * 100)}% of all cores busy (1 s sample), loadavg ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);
  for (const line of info) progress(line);

  const cmds = new Commands(t);
  const layout = await makeTempDir(t, 'hs-bench-layout-');
  progress('generating the image: a ~1 MiB and a ~256 MiB layer of seeded random bytes, streamed to disk');
  const image = await makeImage(layout, { tag: TAG, seed: 'bench/serve', layerSizes: [MiB, 256 * MiB] });
  const entry = await satelliteEntry(t, opts);

  progress('starting the satellite and docker-registry on 127.0.0.1');
  const [sat, reg] = await Promise.all([
    startSatellite(t, {
      config: opts.satelliteConfig,
      env: opts.satelliteEnv,
      nodeArgs: opts.nodeArgs,
      ...(entry ? { entry } : {}),
    }),
    startDockerRegistry(t),
  ]);
  const servers: Server[] = [
    { name: 'satellite', url: sat.url, pid: sat.proc.pid!, results: { mem: new PeakTracker(sat.proc.pid!) } },
    { name: 'docker-registry', url: reg.url, pid: reg.proc.pid!, results: { mem: new PeakTracker(reg.proc.pid!) } },
  ];
  for (const s of servers) {
    const exe = exeOf(s.pid);
    if (basename(exe) === 'setpriv') throw new Error(`${s.name}: pid ${s.pid} is still the setpriv wrapper, not the server`);
    progress(`${s.name}: ${s.url}, pid ${s.pid} (${exe})`);
  }

  await measure(cmds, opts, servers, layout, image);
  const [satResults, regResults] = servers.map((s) => s.results as ServerResults) as [ServerResults, ServerResults];
  const [small, large] = image.layers as [LayerBlob, LayerBlob];
  return [
    `### node bench/serve.ts ${process.argv.slice(2).join(' ')}`.trim(),
    '',
    ...info.map((line) => `- ${line}`),
    `- content: ${REPO}:${TAG}, blobs of ${small.size} B and ${large.size} B, manifest ${image.size} B`,
    '',
    report(opts, satResults, regResults, { small: small.size, large: large.size }),
  ].join('\n');
}

process.exitCode = await runBenchScript<Options>({
  usage: USAGE,
  parse: parseOptions,
  // The default run takes about 3 minutes.
  budgetSec: (opts) => 130 + opts.rounds * 4 * (opts.durationSec + 10),
  run,
  progress,
});


#!/usr/bin/env node
// Replication benchmark: the satellite's sync against `skopeo sync`, side by side in one run, on
// the same image set on one upstream docker-registry, on a clean link and on a link cut every
// 16 MiB. Results and how to read them: docs/benchmarks.md. Linux only (/proc, GNU time).
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { defer } from '../test/helpers/cleanup.ts';
import { startDockerRegistry } from '../test/helpers/docker-registry.ts';
import { REPO_ROOT } from '../test/helpers/satellite.ts';
import { makeTempDir } from '../test/helpers/tmp.ts';
import { VERSION } from '../src/version.ts';
import { firstLine } from './lib/machine.ts';
import { backgroundLoad } from './lib/proc-stats.ts';
import { fmt, mib } from './lib/table.ts';
import type { ScriptTeardown } from './lib/teardown.ts';
import { runBenchScript } from './lib/script-main.ts';
import { buildImageSet, type ImageSet } from './sync/image-set.ts';
import { parseOptions, USAGE, type Options } from './sync/options.ts';
import { NOISY_CORES, report, type Results } from './sync/report.ts';
import type { RunResult } from './sync/result.ts';
import { runSatellite } from './sync/satellite-run.ts';
import { runSkopeo } from './sync/skopeo-run.ts';

const t0 = Date.now();
/** Busy share of all cores, measured with nothing of ours running, under which a run may start. */
const QUIET_SHARE = 0.1;
const progress = (msg: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);

function describeRun(name: string, r: RunResult, set: ImageSet): string {
  const done = r.finished ? 'done' : `NOT finished (${r.images}/${set.images.length} images)`;
  return `${name}: ${done} in ${fmt(r.wallSec, 2)} s, ${fmt(set.setBytes / r.wallSec / 1e6)} MB/s, ` +
    `${fmt(r.bytesFromUpstream / set.setBytes, 3)}× the set from upstream, peak RSS ${mib(r.peakRssKiB)} MiB, CPU ${fmt(r.cpuSec, 1)} s` +
    (r.dest ? `; destination registry peak RSS ${mib(r.dest.peakRssKiB)} MiB, CPU ${fmt(r.dest.cpuSec, 1)} s` : '') +
    (r.unchanged ? `; then nothing changed: ${fmt(r.unchanged.wallSec, 2)} s, ${r.unchanged.bytesFromUpstream} bytes, ${r.unchanged.requests} requests, ${r.unchanged.newConnections} new connections` : '');
}

/**
 * Waits (up to maxSec) until the rest of the machine is quiet — another benchmark or a build on a
 * 2 vCPU machine halves what either measures. Returns the busy share of the last 1 s sample.
 */
async function waitForQuiet(maxSec: number): Promise<number> {
  const deadline = Date.now() + maxSec * 1000;
  let load = await backgroundLoad(1000);
  while (load > QUIET_SHARE && Date.now() < deadline) {
    progress(`machine busy (${fmt(load * 100)}% of all cores in 1 s): waiting for quiet`);
    await new Promise((resolve) => setTimeout(resolve, 4000));
    load = await backgroundLoad(1000);
  }
  return load;
}

function machineLines(opts: Options): string[] {
  const lines = [
    `date: ${new Date().toISOString()}`,
    `machine: ${firstLine('nproc', [])} vCPU (nproc), ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, Linux ${firstLine('uname', ['-r'])}`,
    `node: ${process.version}; satellite ${VERSION} at ${firstLine('git', ['describe', '--always', '--dirty'], REPO_ROOT)}, ${opts.bundle ? 'esbuild bundle (node build.mjs)' : 'src/cli/satellite.ts'}`,
    `${firstLine('skopeo', ['--version'])}; upstream and destination: docker-registry ${firstLine('docker-registry', ['--version'])}`,
  ];
  if (Object.keys(opts.satelliteConfig).length > 0) lines.push(`satellite config: ${JSON.stringify(opts.satelliteConfig)}`);
  lines.push(`satellite node flags: ${opts.nodeArgs.join(' ') || '(none)'}`);
  for (const [name, value] of Object.entries(opts.satelliteEnv)) lines.push(`satellite env: ${name}=${value}`);
  return lines;
}

/** The esbuild bundle, built inside the repository so its external lmdb resolves from node_modules. */
async function satelliteEntry(t: ScriptTeardown, opts: Options): Promise<string | undefined> {
  if (!opts.bundle) return undefined;
  const outdir = join(REPO_ROOT, 'dist', `bench-sync-${process.pid}`);
  defer(t, () => rm(outdir, { recursive: true, force: true }));
  const { bundle } = await import('../build.mjs');
  await bundle(outdir);
  return join(outdir, 'satellite.mjs');
}

async function run(t: ScriptTeardown, opts: Options): Promise<string> {
  const info = machineLines(opts);
  for (const line of info) progress(line);
  const entry = await satelliteEntry(t, opts);
  if (opts.logsDir) await mkdir(opts.logsDir, { recursive: true });

  progress('starting the upstream docker-registry; generating the set and pushing it with skopeo copy');
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-bench-sync-layout-');
  const set = await buildImageSet(layout, upstream.host, opts.set);
  await rm(layout, { recursive: true, force: true }); // the upstream has it now
  progress(`set: ${set.images.length} images, ${set.distinctLayers} distinct layers, ${set.setBytes} bytes`);

  const upstreamPid = upstream.proc.pid!;
  const quiet = async () => {
    const load = await waitForQuiet(opts.quietWaitSec);
    if (load > QUIET_SHARE) progress(`machine still busy (${fmt(load * 100)}%) after ${opts.quietWaitSec} s: running anyway, see the noise figures`);
  };
  const common = { upstreamHost: upstream.host, upstreamPid, set, timeoutMs: opts.timeoutMs, wan: opts.wan };
  let discarded = 0;
  let runNo = 0;
  // A run during which other processes took a real share of the 2 vCPUs measures them, not us:
  // it is run again (up to --noise-retries times) and the last attempt kept.
  const measured = async (name: string, once: () => Promise<RunResult>): Promise<RunResult> => {
    for (let attempt = 0; ; attempt++) {
      await quiet();
      const r = await once();
      if (opts.logsDir) await writeFile(join(opts.logsDir, `${String(++runNo).padStart(2, '0')}-${name}.log`), `${r.output}\n`);
      if (r.cpu.other <= NOISY_CORES || attempt >= opts.noiseRetries) return r;
      discarded++;
      progress(`${name}: other processes used ${fmt(r.cpu.other, 2)} cores during the run (${fmt(r.wallSec, 2)} s): discarded, running it again`);
    }
  };
  const sat = (cutBytes?: number) =>
    measured('satellite', () => runSatellite(t, { ...common, entry, nodeArgs: opts.nodeArgs, env: opts.satelliteEnv, satelliteConfig: opts.satelliteConfig, cutBytes, unchangedRun: opts.unchanged && !cutBytes }));
  const sko = (cutBytes?: number, retryTimes?: number) => measured('skopeo', () => runSkopeo(t, { ...common, cutBytes, retryTimes }));

  const results: Results = { clean: { satellite: [], skopeo: [] }, ...(opts.wan ? { wan: opts.wan } : {}) };
  if (opts.wan) progress(`WAN emulated in the proxy: ${opts.wan.delayMs} ms each way, ${opts.wan.rateBytesPerSec ? `${(opts.wan.rateBytesPerSec * 8) / 1e6} Mbit/s shared` : 'no rate limit'}`);
  for (let i = 0; i < opts.reps; i++) {
    // Alternate who goes first, so neither always meets the warmer (or more fragmented) machine.
    const order = i % 2 === 0 ? (['satellite', 'skopeo'] as const) : (['skopeo', 'satellite'] as const);
    for (const who of order) {
      progress(`clean link, run ${i + 1}/${opts.reps}: ${who}`);
      const r = who === 'satellite' ? await sat() : await sko();
      results.clean[who].push(r);
      progress(describeRun(who, r, set));
    }
  }
  if (opts.cut) {
    progress(`link cut every ${opts.cutBytes / 1024 / 1024} MiB: satellite`);
    const satCut = await sat(opts.cutBytes);
    progress(describeRun('satellite', satCut, set));
    progress(`link cut every ${opts.cutBytes / 1024 / 1024} MiB: skopeo sync --retry-times ${opts.retryTimes}`);
    const skoCut = await sko(opts.cutBytes, opts.retryTimes);
    progress(describeRun('skopeo', skoCut, set));
    results.cut = { satellite: satCut, skopeo: skoCut, cutBytes: opts.cutBytes, retryTimes: opts.retryTimes };
  }
  if (discarded > 0) info.push(`runs discarded and repeated because other processes used over ${NOISY_CORES} cores: ${discarded}`);
  const header = [`### node bench/sync.ts ${process.argv.slice(2).join(' ')}`.trim(), '', ...info.map((l) => `- ${l}`)];
  return report(results, set, header);
}

process.exitCode = await runBenchScript<Options>({
  usage: USAGE,
  parse: parseOptions,
  // Set-up plus every run at its own limit.
  budgetSec: (opts) => 300 + (2 * opts.reps + (opts.cut ? 2 : 0)) * (1 + opts.noiseRetries) * (opts.timeoutMs / 1000 + opts.quietWaitSec + 2),
  run,
  progress,
});


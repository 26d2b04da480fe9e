#!/usr/bin/env node
// Cold proxy pulls over a link that keeps getting cut: N concurrent GETs of one uncached blob
// (default 20 × 80 MB) through the satellite's pull-through proxy, side by side in one run with
// docker-registry's proxy mode, each behind its own TCP proxy that cuts every connection after
// C MiB upstream->client (C = clean, 1, 3, 5, 16 by default). Issue 14's target: ≤ 1.005× the blob
// read from the upstream at 5 MiB cuts; issue 15's: peak RSS ≤ 96 MiB. Results: docs/benchmarks.md.
//   node bench/proxy/cut-link.ts [--source] [--cuts 0,1,3,5,16] [--clients 20]   (npm run bench:proxy-cut)
import { rm } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { defer } from '../../test/helpers/cleanup.ts';
import { startDockerRegistry } from '../../test/helpers/docker-registry.ts';
import { startFaultProxy, type FaultProxy } from '../../test/helpers/fault-proxy.ts';
import { makeImage } from '../../test/helpers/fixtures.ts';
import { deepMerge, REPO_ROOT, startSatellite } from '../../test/helpers/satellite.ts';
import { skopeoCopy } from '../../test/helpers/skopeo.ts';
import { makeTempDir } from '../../test/helpers/tmp.ts';
import { VERSION } from '../../src/version.ts';
import { firstLine } from '../lib/machine.ts';
import { CpuMeter, exeOf, readMem } from '../lib/proc-stats.ts';
import { runBenchScript } from '../lib/script-main.ts';
import { parseJsonObject } from '../lib/serve-options.ts';
import { fmt, formatTable, mib } from '../lib/table.ts';
import { ScriptTeardown } from '../lib/teardown.ts';
import { blobClients, type ClientRound } from './cut-clients.ts';

const USAGE = `usage: node bench/proxy/cut-link.ts [options]        (npm run bench:proxy-cut -- [options])

One uncached blob (default 80 MB, a generated gzip layer pushed to a Debian docker-registry) is
pulled by N concurrent clients (curl | sha256sum, each checks size and digest) through the
satellite's pull-through proxy (fresh data dir) and through docker-registry's proxy mode (fresh
storage), one after the other, each reading its upstream through its own TCP proxy that counts the
bytes and cuts every connection after C MiB upstream->client.

  --cuts LIST          cut sizes in MiB, comma-separated; 0 = clean link (default 0,1,3,5,16)
  --clients N          concurrent clients (default 20)
  --blob-mb N          blob content in MB (10^6 B; default 80)
  --timeout S          per-client time limit in seconds (default 300)
  --no-registry        skip docker-registry's proxy mode
  --source             run src/cli/satellite.ts instead of the esbuild bundle (node build.mjs)
  --node-args=A        node flags for the satellite, space-separated (default: the release
                       wrapper's, --max-semi-space-size=1 --optimize-for-size, with MALLOC_ARENA_MAX=2)
  --satellite-config JSON   merged into the satellite's config

Everything listens on 127.0.0.1. Linux only (/proc).`;

interface Options {
  cutsMiB: number[];
  clients: number;
  blobMB: number;
  timeoutSec: number;
  registry: boolean;
  bundle: boolean;
  nodeArgs: string[] | undefined;
  satelliteConfig: Record<string, unknown>;
}

function parse(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: 'boolean', short: 'h' },
      cuts: { type: 'string' },
      clients: { type: 'string' },
      'blob-mb': { type: 'string' },
      timeout: { type: 'string' },
      'no-registry': { type: 'boolean' },
      source: { type: 'boolean' },
      'node-args': { type: 'string' },
      'satellite-config': { type: 'string' },
    },
  });
  if (values.help) return undefined;
  const whole = (text: string | undefined, name: string, min: number, max: number, dflt: number) => {
    if (text === undefined) return dflt;
    const n = Number(text);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number in ${min}..${max}, got ${text}`);
    return n;
  };
  const cutsMiB = (values.cuts ?? '0,1,3,5,16').split(',').map((c) => whole(c.trim(), '--cuts', 0, 1024, 0));
  return {
    cutsMiB,
    clients: whole(values.clients, '--clients', 1, 200, 20),
    blobMB: whole(values['blob-mb'], '--blob-mb', 1, 4096, 80),
    timeoutSec: whole(values.timeout, '--timeout', 10, 3600, 300),
    registry: !values['no-registry'],
    bundle: !values.source,
    nodeArgs: values['node-args']?.split(' ').filter(Boolean),
    satelliteConfig: values['satellite-config'] ? parseJsonObject(values['satellite-config'], '--satellite-config') : {},
  };
}

const t0 = Date.now();
const progress = (msg: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
const REPO = 'bench/cut';
const MiB = 1024 * 1024;

interface SideResult {
  round: ClientRound;
  /** Everything the upstream sent through the link (HTTP headers included), settled. */
  bytesFromUpstream: number;
  cuts: number;
  connections: number;
  idleKiB: number;
  /** VmHWM at the end: the peak since the process started (it started for this run). */
  peakKiB: number;
  /** Cores used by everything but the server, the upstream and this script's clients. */
  otherCores: number;
  /** Satellite only: its proxy counters after the run. */
  resumes?: number;
  misses?: number;
  /** Satellite only: body bytes its upstream client counted as they arrived (kept or not). */
  bodyBytes?: number;
}

/** Waits until the link has carried nothing new for 1 s (a server may go on fetching after its clients are done). */
async function settled(link: FaultProxy, maxMs = 30_000): Promise<number> {
  const deadline = Date.now() + maxMs;
  let last = link.bytesFromTarget();
  for (;;) {
    await sleep(1000);
    const now = link.bytesFromTarget();
    if (now === last || Date.now() > deadline) return now;
    last = now;
  }
}

interface Run {
  upstream: { host: string; pid: number };
  blob: { digest: string; size: number };
  cutBytes: number | undefined;
}

async function satelliteSide(parent: ScriptTeardown, opts: Options, entry: string | undefined, run: Run): Promise<SideResult> {
  const t = new ScriptTeardown();
  defer(parent, () => t.run());
  try {
    const link = await startFaultProxy(t, { target: run.upstream.host, ...(run.cutBytes ? { cutEveryBytes: run.cutBytes } : {}) });
    const config = deepMerge({ log: { level: 'info' }, proxy: { enabled: true, upstream: { url: link.url } }, store: { gcGraceSeconds: 0 } }, opts.satelliteConfig);
    const { NODE_FLAGS, RUNTIME_ENV } = await import('../../scripts/release/runtime.ts');
    const sat = await startSatellite(t, {
      config,
      nodeArgs: opts.nodeArgs ?? [...NODE_FLAGS.satellite],
      env: opts.nodeArgs ? {} : { ...RUNTIME_ENV.satellite },
      ...(entry ? { entry } : {}),
    });
    await sat.waitForLog(/"msg":"satellite started"/, 30_000);
    const pid = sat.proc.pid!;
    if (exeOf(pid).endsWith('/setpriv')) throw new Error(`satellite pid ${pid} is still the setpriv wrapper`);
    await sleep(1000);
    const idleKiB = readMem(pid).rssKiB;
    const meter = new CpuMeter([pid, run.upstream.pid]);
    const round = await blobClients(t, `${sat.url}/v2/${REPO}/blobs/${run.blob.digest}`, opts.clients, run.blob, opts.timeoutSec);
    const cpu = meter.stop();
    const bytesFromUpstream = await settled(link);
    const peakKiB = readMem(pid).hwmKiB;
    const status = (await (await fetch(`${sat.url}/_satellite/status`)).json()) as { proxy: { upstreamResumes: number; blobMisses: number; upstreamBytes: number } };
    return {
      round,
      bytesFromUpstream,
      cuts: link.cuts(),
      connections: link.connections(),
      idleKiB,
      peakKiB,
      otherCores: cpu.other,
      resumes: status.proxy.upstreamResumes,
      misses: status.proxy.blobMisses,
      bodyBytes: status.proxy.upstreamBytes,
    };
  } finally {
    await t.run();
  }
}

async function registrySide(parent: ScriptTeardown, opts: Options, run: Run): Promise<SideResult> {
  const t = new ScriptTeardown();
  defer(parent, () => t.run());
  try {
    const link = await startFaultProxy(t, { target: run.upstream.host, ...(run.cutBytes ? { cutEveryBytes: run.cutBytes } : {}) });
    const reg = await startDockerRegistry(t, { proxyRemoteUrl: link.url });
    const pid = reg.proc.pid!;
    await sleep(1000);
    const idleKiB = readMem(pid).rssKiB;
    const meter = new CpuMeter([pid, run.upstream.pid]);
    const round = await blobClients(t, `${reg.url}/v2/${REPO}/blobs/${run.blob.digest}`, opts.clients, run.blob, opts.timeoutSec);
    const cpu = meter.stop();
    const bytesFromUpstream = await settled(link);
    return { round, bytesFromUpstream, cuts: link.cuts(), connections: link.connections(), idleKiB, peakKiB: readMem(pid).hwmKiB, otherCores: cpu.other };
  } finally {
    await t.run();
  }
}

function describe(name: string, cut: string, r: SideResult, size: number): string {
  const ok = r.round.clients.filter((c) => c.ok).length;
  const errors = [...new Set(r.round.clients.filter((c) => !c.ok).map((c) => c.error))].slice(0, 3);
  return `${name}, ${cut}: ${ok}/${r.round.clients.length} clients correct in ${fmt(r.round.wallSec, 2)} s; ${fmt(r.bytesFromUpstream / size, 4)}× the blob from upstream ` +
    `(${r.bytesFromUpstream} B through the link, ${r.connections} connections, ${r.cuts} cuts${r.resumes !== undefined ? `, ${r.resumes} resumes, ${r.misses} misses` : ''}` +
    `${r.bodyBytes !== undefined ? `; body bytes the satellite received: ${r.bodyBytes}, the blob ${r.bodyBytes === size ? 'exactly' : `${r.bodyBytes > size ? '+' : ''}${r.bodyBytes - size}`}` : ''}); ` +
    `RSS idle ${mib(r.idleKiB)} MiB, peak ${mib(r.peakKiB)} MiB; other processes ${fmt(r.otherCores, 2)} cores` +
    (errors.length ? `; errors: ${errors.join(' | ')}` : '');
}

async function main(t: ScriptTeardown, opts: Options): Promise<string> {
  const info = [
    `date: ${new Date().toISOString()}; load average at start: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`,
    `machine: ${firstLine('nproc', [])} vCPU (nproc), ${cpus()[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, Linux ${firstLine('uname', ['-r'])}`,
    `node: ${process.version}; satellite ${VERSION} at ${firstLine('git', ['describe', '--always', '--dirty'], REPO_ROOT)}, ${opts.bundle ? 'esbuild bundle (node build.mjs)' : 'src/cli/satellite.ts'}, ` +
      `node flags: ${opts.nodeArgs ? opts.nodeArgs.join(' ') || '(none)' : "the release wrapper's, MALLOC_ARENA_MAX=2"}`,
    `upstream and proxy-mode registry: docker-registry ${firstLine('docker-registry', ['--version'])}; clients: ${opts.clients} × curl | sha256sum`,
  ];
  for (const line of info) progress(line);
  let entry: string | undefined;
  if (opts.bundle) {
    const outdir = join(REPO_ROOT, 'dist', `bench-proxy-cut-${process.pid}`);
    defer(t, () => rm(outdir, { recursive: true, force: true }));
    const { bundle } = await import('../../build.mjs');
    await bundle(outdir);
    entry = join(outdir, 'satellite.mjs');
  }

  progress(`generating a ${opts.blobMB} MB layer and pushing it to the upstream docker-registry`);
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-bench-cut-');
  const img = await makeImage(layout, { tag: 'v1', seed: 'bench-proxy-cut', layerSizes: [opts.blobMB * 1_000_000] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/${REPO}:v1`);
  await rm(layout, { recursive: true, force: true });
  const blob = { digest: img.layers[0]!.digest, size: img.layers[0]!.size };
  progress(`blob ${blob.digest}, ${blob.size} B`);

  const rows: string[][] = [];
  const lines: string[] = [];
  for (const [i, cutMiB] of opts.cutsMiB.entries()) {
    const run: Run = { upstream: { host: upstream.host, pid: upstream.proc.pid! }, blob, cutBytes: cutMiB > 0 ? cutMiB * MiB : undefined };
    const cut = cutMiB > 0 ? `cut every ${cutMiB} MiB` : 'clean link';
    // Alternate who goes first, so neither always meets the warmer page cache.
    const order = opts.registry ? (i % 2 === 0 ? (['satellite', 'registry'] as const) : (['registry', 'satellite'] as const)) : (['satellite'] as const);
    const got: Partial<Record<'satellite' | 'registry', SideResult>> = {};
    for (const who of order) {
      progress(`${cut}: ${who}`);
      got[who] = who === 'satellite' ? await satelliteSide(t, opts, entry, run) : await registrySide(t, opts, run);
      const line = describe(who === 'satellite' ? 'satellite proxy' : 'docker-registry proxy mode', cut, got[who], blob.size);
      progress(line);
      lines.push(line);
    }
    const cells = (r: SideResult | undefined) =>
      r
        ? [`${r.round.clients.filter((c) => c.ok).length}/${r.round.clients.length}`, fmt(r.bytesFromUpstream / blob.size, 4), fmt(r.round.wallSec, 2), mib(r.peakKiB)]
        : ['—', '—', '—', '—'];
    const s = got.satellite!;
    rows.push([cutMiB > 0 ? `${cutMiB} MiB` : 'clean', ...cells(s), `${s.cuts} / ${s.resumes}`, String((s.bodyBytes ?? Number.NaN) - blob.size), ...cells(got.registry), fmt(Math.max(s.otherCores, got.registry?.otherCores ?? 0), 2)]);
  }
  info.push(`load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`);
  const table = formatTable(
    ['cut', 'satellite: clients correct', 'bytes / blob', 'wall s', 'peak RSS MiB', 'cuts / resumes', 'body bytes received − blob', 'docker-registry: clients correct', 'bytes / blob', 'wall s', 'peak RSS MiB', 'other cores (max)'],
    rows,
  );
  return [`### node bench/proxy/cut-link.ts ${process.argv.slice(2).join(' ')}`.trim(), '', ...info.map((l) => `- ${l}`), `- blob: ${blob.size} B (${blob.digest})`, '', table, '', ...lines.map((l) => `- ${l}`)].join('\n');
}

process.exitCode = await runBenchScript<Options>({
  usage: USAGE,
  parse,
  budgetSec: (o) => 300 + o.cutsMiB.length * (o.registry ? 2 : 1) * (o.timeoutSec + 60),
  run: main,
  progress,
});

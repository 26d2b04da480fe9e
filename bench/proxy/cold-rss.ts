#!/usr/bin/env node
// Peak RSS of the satellite bundle (as shipped) under concurrent cold pulls of one blob through its
// pull-through proxy: every client asks for the same 80 MB layer the satellite does not have yet
// (one upstream fetch, streamed to all while it is cached). Figures: docs/benchmarks.md ("Memory").
//   node bench/proxy/cold-rss.ts [--clients 20] [--rounds 2] [--node-defaults] [--node-args=A] [--satellite-env N=V]
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defer } from '../../test/helpers/cleanup.ts';
import { startDockerRegistry } from '../../test/helpers/docker-registry.ts';
import { startFaultProxy } from '../../test/helpers/fault-proxy.ts';
import { makeImage } from '../../test/helpers/fixtures.ts';
import { REPO_ROOT, startSatellite } from '../../test/helpers/satellite.ts';
import { skopeoCopy } from '../../test/helpers/skopeo.ts';
import { makeTempDir } from '../../test/helpers/tmp.ts';
import { Commands } from '../lib/commands.ts';
import { readMem, resetPeak } from '../lib/proc-stats.ts';
import { runBenchScript } from '../lib/script-main.ts';
import { satelliteRuntime } from '../lib/serve-options.ts';
import type { ScriptTeardown } from '../lib/teardown.ts';

const USAGE = `usage: node bench/proxy/cold-rss.ts [options]

A fresh bundled satellite (proxy on, empty cache) per round; N curl clients GET the same 80 MB blob
at once; VmHWM of the satellite, bytes it read from upstream, wall time.

  --clients N       concurrent clients (default 20)
  --rounds N        fresh satellites one after the other (default 2)
  --node-args=A     node flags added to the release wrapper's
  --satellite-env NAME=VALUE   environment added to the wrapper's (repeatable)
  --node-defaults   stock Node: without the wrapper's flags and environment`;

interface Options {
  clients: number;
  rounds: number;
  nodeArgs: string[];
  satelliteEnv: Record<string, string>;
}

function parse(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: 'string', default: '20' },
      rounds: { type: 'string', default: '2' },
      'node-args': { type: 'string' },
      'satellite-env': { type: 'string', multiple: true },
      'node-defaults': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const clients = Number(values.clients);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(clients) || clients < 1 || clients > 200) throw new Error(`--clients must be 1..200, got ${values.clients}`);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10) throw new Error(`--rounds must be 1..10, got ${values.rounds}`);
  return { clients, rounds, ...satelliteRuntime(values['node-defaults'], values['node-args'], values['satellite-env']) };
}

const t0 = Date.now();
const progress = (msg: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
const MB = 1000 * 1000;

async function run(t: ScriptTeardown, opts: Options): Promise<string> {
  const outdir = join(REPO_ROOT, 'dist', `bench-cold-rss-${process.pid}`);
  defer(t, () => rm(outdir, { recursive: true, force: true }));
  const { bundle } = await import('../../build.mjs');
  await bundle(outdir);
  const upstream = await startDockerRegistry(t);
  const layout = await makeTempDir(t, 'hs-bench-cold-');
  const image = await makeImage(layout, { tag: 'v1', seed: 'bench/cold-rss', layerSizes: [80 * MB] });
  await skopeoCopy(`oci:${layout}:v1`, `docker://${upstream.host}/big/app:v1`);
  const layer = image.layers[0]!;
  const cmds = new Commands(t);
  const lines = [`satellite node flags: ${opts.nodeArgs.join(' ') || '(none)'}; env: ${JSON.stringify(opts.satelliteEnv)}`];
  for (let round = 1; round <= opts.rounds; round++) {
    const link = await startFaultProxy(t, { target: upstream.host });
    const sat = await startSatellite(t, {
      entry: join(outdir, 'satellite.mjs'),
      nodeArgs: opts.nodeArgs,
      env: opts.satelliteEnv,
      config: { proxy: { enabled: true, upstream: { url: link.url } } },
    });
    const pid = sat.proc.pid!;
    const idle = readMem(pid);
    resetPeak(pid);
    const started = Date.now();
    await Promise.all(Array.from({ length: opts.clients }, () => cmds.run('curl', ['-sS', '-f', '-o', '/dev/null', `${sat.url}/v2/big/app/blobs/${layer.digest}`], 300_000)));
    const sec = (Date.now() - started) / 1000;
    const m = readMem(pid);
    const line =
      `round ${round}: ${opts.clients} cold pulls of ${(layer.size / MB).toFixed(0)} MB in ${sec.toFixed(2)} s (${((opts.clients * layer.size) / MB / sec).toFixed(0)} MB/s to clients), ` +
      `${(link.bytesFromTarget() / layer.size).toFixed(3)}× the blob from upstream; satellite RSS idle ${(idle.rssKiB / 1024).toFixed(1)} MiB, ` +
      `peak ${(m.hwmKiB / 1024).toFixed(1)} MiB, after ${(m.rssKiB / 1024).toFixed(1)} MiB`;
    progress(line);
    lines.push(line);
    await sat.stop(15_000);
  }
  return lines.join('\n');
}

process.exitCode = await runBenchScript<Options>({ usage: USAGE, parse, budgetSec: (o) => 300 + o.rounds * 120, run, progress });

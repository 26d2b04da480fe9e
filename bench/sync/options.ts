import { parseArgs } from 'node:util';
import { parseJsonObject, satelliteRuntime } from '../lib/serve-options.ts';
import { SET_NAMES, type SetName } from './image-set.ts';

export const USAGE = `usage: node bench/sync.ts [options]        (npm run bench:sync -- [options])

Replicates one image set (5 images sharing a base layer, ~500 MB) from a Debian docker-registry
upstream, side by side in one run: by the satellite (its sync engine, empty data dir) and by
\`skopeo sync\` into an empty docker-registry. Every byte either reads crosses a TCP proxy in front
of the upstream, which counts it. Then again with the proxy cutting every connection after 16 MiB.

  --quick            smoke run: the same shape at ~100 MB, one repetition (~1 min)
  --reps N           clean-link repetitions per tool, alternating (default 5; --quick 1; 0 = cut only)
  --no-cut           skip the cut-link scenario
  --cut-mib N        cut each connection after N MiB upstream->client (default 16)
  --retry-times N    skopeo sync --retry-times in the cut scenario (default 3)
  --timeout S        per-run time limit in seconds, each tool (default 300)
  --quiet-wait S     before each run, wait up to S seconds for other processes to use under 10 %
                     of the CPU (default 120; 0 = do not wait)
  --noise-retries N  run a measurement again when other processes used over 0.2 cores during it,
                     up to N times; the last attempt is kept (default 2)
  --logs DIR         write each run's output (satellite JSON log, skopeo output) into DIR
  --source           run src/cli/satellite.ts instead of the esbuild bundle (node build.mjs)
  --concurrency N    the satellite's sync.concurrency (default: its own default, 3)
  --node-args=A      node flags for the satellite only, space-separated (write it with =), after the
                     release wrapper's (a later flag wins), e.g. --node-args="--max-old-space-size=64",
                     --node-args="--cpu-prof --cpu-prof-dir=/tmp/prof" (read with bench/cpuprofile-top.ts)
  --satellite-env NAME=VALUE
                     extra environment for the satellite (repeatable), e.g. MALLOC_TRIM_THRESHOLD_=131072
  --node-defaults    run the satellite with Node's and glibc's defaults, without the release
                     wrapper's flags and environment (scripts/release/runtime.ts), which apply otherwise
  --set NAME         the image set: default (~500 MB), quick (~100 MB), five (5 images, 42 MB,
                     shared 10 MiB base) or thirty (30 small images, 6.9 MB); --quick = --set quick
  --wan-delay-ms N   emulate a WAN in the proxy: N ms added each way (RTT 2N), both tools
  --wan-rate-mbit N  ...and one rate budget upstream->tool shared by all connections (Mbit/s)
  --unchanged        after each satellite run, run it again with nothing changed and time that
  --satellite-config JSON
                     merged into the satellite's config, e.g. '{"sync":{"checkpointBytes":16777216}}'

Everything listens on 127.0.0.1. Linux only: memory and CPU come from /proc and GNU time.`;

export interface Options {
  quick: boolean;
  reps: number;
  cut: boolean;
  cutBytes: number;
  retryTimes: number;
  timeoutMs: number;
  quietWaitSec: number;
  noiseRetries: number;
  logsDir: string | undefined;
  bundle: boolean;
  nodeArgs: string[];
  satelliteEnv: Record<string, string>;
  satelliteConfig: Record<string, unknown>;
  set: SetName;
  wan: { delayMs: number; rateBytesPerSec?: number } | undefined;
  unchanged: boolean;
}

function wholeNumber(text: string | undefined, name: string, min: number, max: number, dflt: number): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be a whole number in ${min}..${max}, got ${text}`);
  return n;
}

/** The options, or undefined for --help. Throws with the option named on bad input. */
export function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      'no-cut': { type: 'boolean', default: false },
      'cut-mib': { type: 'string' },
      'retry-times': { type: 'string' },
      timeout: { type: 'string' },
      'quiet-wait': { type: 'string' },
      'noise-retries': { type: 'string' },
      logs: { type: 'string' },
      source: { type: 'boolean', default: false },
      concurrency: { type: 'string' },
      'node-args': { type: 'string' },
      'satellite-env': { type: 'string', multiple: true },
      'node-defaults': { type: 'boolean', default: false },
      'satellite-config': { type: 'string' },
      set: { type: 'string' },
      'wan-delay-ms': { type: 'string' },
      'wan-rate-mbit': { type: 'string' },
      unchanged: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const satelliteConfig = parseJsonObject(values['satellite-config'], '--satellite-config');
  if (values.concurrency !== undefined) {
    const concurrency = wholeNumber(values.concurrency, '--concurrency', 1, 64, 3);
    const sync = (satelliteConfig.sync ?? {}) as Record<string, unknown>;
    satelliteConfig.sync = { ...sync, concurrency };
  }
  const set = (values.set ?? (values.quick ? 'quick' : 'default')) as SetName;
  if (!SET_NAMES.includes(set)) throw new Error(`--set must be one of ${SET_NAMES.join(', ')}, got ${values.set}`);
  const delayMs = wholeNumber(values['wan-delay-ms'], '--wan-delay-ms', 0, 5000, 0);
  const rateMbit = wholeNumber(values['wan-rate-mbit'], '--wan-rate-mbit', 0, 10000, 0);
  const wan = delayMs > 0 || rateMbit > 0 ? { delayMs, ...(rateMbit > 0 ? { rateBytesPerSec: (rateMbit * 1e6) / 8 } : {}) } : undefined;
  return {
    set,
    wan,
    unchanged: values.unchanged,
    quick: values.quick,
    reps: wholeNumber(values.reps, '--reps', 0, 10, values.quick ? 1 : 5),
    cut: !values['no-cut'],
    cutBytes: wholeNumber(values['cut-mib'], '--cut-mib', 1, 1024, 16) * 1024 * 1024,
    retryTimes: wholeNumber(values['retry-times'], '--retry-times', 0, 100, 3),
    timeoutMs: wholeNumber(values.timeout, '--timeout', 10, 3600, 300) * 1000,
    quietWaitSec: wholeNumber(values['quiet-wait'], '--quiet-wait', 0, 3600, 120),
    noiseRetries: wholeNumber(values['noise-retries'], '--noise-retries', 0, 10, 2),
    logsDir: values.logs,
    bundle: !values.source,
    ...satelliteRuntime(values['node-defaults'], values['node-args'], values['satellite-env']),
    satelliteConfig,
  };
}

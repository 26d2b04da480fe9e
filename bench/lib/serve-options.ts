import { parseArgs } from 'node:util';
import { NODE_FLAGS, RUNTIME_ENV } from '../../scripts/release/runtime.ts';

export const USAGE = `usage: node bench/serve.ts [options]        (npm run bench:serve -- [options])

Starts the satellite and the Debian docker-registry on 127.0.0.1, pushes the same image to both
(a ~1 MiB and a ~256 MiB layer) and measures them side by side: wrk req/s on the small blob and on
the manifest, curl MB/s on the large blob (1 and 8 streams), and peak RSS with 64 slow downloads.

  --quick        smoke run: 3 s wrk runs, one round, faster slow clients (~1 min)
  --duration N   seconds per wrk run (default 10; --quick 3)
  --rounds N     alternating rounds of the req/s and MB/s measurements; the best of each server
                 counts, since other work on the machine only ever slows a run (default 2; --quick 1)
  --rate R       curl --limit-rate of each of the 64 slow clients (default 12M; --quick 40M)
  --bundle       run the esbuild bundle (node build.mjs) instead of src/cli/satellite.ts
  --node-args A  node flags for the satellite only, space-separated, after the shipped ones (a
                 later flag wins): "--max-old-space-size=64", "--cpu-prof --cpu-prof-dir=/tmp/prof"
  --satellite-config JSON
                 merged into the satellite's config, e.g. '{"store":{"readChunkBytes":65536}}'
  --satellite-env NAME=VALUE
                 extra environment for the satellite (repeatable), e.g. MALLOC_TRIM_THRESHOLD_=131072
  --node-defaults
                 run the satellite with Node's and glibc's defaults, without the release wrapper's
                 flags and environment (scripts/release/runtime.ts), which apply otherwise

The satellite runs with its default config, log level info, and the release wrapper's node flags
and environment (${NODE_FLAGS.satellite.join(' ')} ${Object.entries(RUNTIME_ENV.satellite).map(([k, v]) => `${k}=${v}`).join(' ')}); docker-registry with the test
helper's config (log level warn, access log off). Linux only: memory and CPU come from /proc.`;

export interface Options {
  durationSec: number;
  warmupSec: number;
  rounds: number;
  /** Downloads per round, one after the other, for the single-stream figure. */
  singleReps: number;
  /** Rounds of `parallelClients` downloads per round, for the parallel figure. */
  parallelReps: number;
  parallelClients: number;
  slowClients: number;
  /** curl --limit-rate of each slow client. */
  slowRate: string;
  bundle: boolean;
  nodeArgs: string[];
  satelliteConfig: Record<string, unknown>;
  satelliteEnv: Record<string, string>;
}

/** An option's value parsed as a JSON object; throws naming the option otherwise. */
export function parseJsonObject(text: string | undefined, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text ?? '{}');
  } catch (err) {
    throw new Error(`${what} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

/** The options, or undefined for --help. Throws with the option named on bad input. */
export function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      rounds: { type: 'string' },
      rate: { type: 'string' },
      bundle: { type: 'boolean', default: false },
      'node-args': { type: 'string' },
      'satellite-config': { type: 'string' },
      'satellite-env': { type: 'string', multiple: true },
      'node-defaults': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const quick = values.quick;
  const durationSec = values.duration === undefined ? (quick ? 3 : 10) : Number(values.duration);
  if (!Number.isInteger(durationSec) || durationSec < 1 || durationSec > 60) {
    throw new Error(`--duration must be a whole number of seconds in 1..60, got ${values.duration}`);
  }
  const rounds = values.rounds === undefined ? (quick ? 1 : 2) : Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 5) throw new Error(`--rounds must be 1..5, got ${values.rounds}`);
  const slowRate = values.rate ?? (quick ? '40M' : '12M');
  if (!/^[1-9]\d*[kKmMgG]?$/.test(slowRate)) throw new Error(`--rate must look like 12M (curl --limit-rate), got ${slowRate}`);
  return {
    durationSec,
    // V8 tiers the hot path up over the first seconds under load (1 MiB GETs: ~570 req/s in the first
    // 3 s, ~730 after, shipped flags): a satellite serves for days, so both servers are measured warm.
    warmupSec: 3,
    rounds,
    singleReps: quick ? 2 : 3,
    parallelReps: quick ? 1 : 2,
    parallelClients: 8,
    slowClients: 64,
    slowRate,
    bundle: values.bundle,
    ...satelliteRuntime(values['node-defaults'], values['node-args'], values['satellite-env']),
    satelliteConfig: parseJsonObject(values['satellite-config'], '--satellite-config'),
  };
}

/**
 * The satellite's node flags and extra environment: the release wrapper's (scripts/release/runtime.ts,
 * what bin/satellite runs with) unless `nodeDefaults`, then the options' own, which win.
 */
export function satelliteRuntime(nodeDefaults: boolean, nodeArgs: string | undefined, envPairs: readonly string[] | undefined): { nodeArgs: string[]; satelliteEnv: Record<string, string> } {
  const satelliteEnv: Record<string, string> = nodeDefaults ? {} : { ...RUNTIME_ENV.satellite };
  for (const pair of envPairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new Error(`--satellite-env wants NAME=VALUE, got ${pair}`);
    satelliteEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const own = (nodeArgs ?? '').split(/\s+/).filter(Boolean);
  return { nodeArgs: [...(nodeDefaults ? [] : NODE_FLAGS.satellite), ...own], satelliteEnv };
}

/** curl's --limit-rate in bytes per second (k, M, G are powers of 1024). */
export function rateBytes(rate: string): number {
  const unit: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
  return Number.parseInt(rate, 10) * (unit[rate.slice(-1).toLowerCase()] ?? 1);
}

import { parseArgs } from 'node:util';

export const USAGE = `usage: node bench/fleet.ts [options]        (npm run bench:fleet -- [options])

Ground Control with an external mosquitto (the documented ACL and password file) and N simulated
satellites: raw MQTT clients in a few child processes that speak the real contract and acknowledge
every desired generation at once. Per size, a fresh mosquitto and Ground Control; then a warm-up
(the group is assigned to the satellites' site) and --rounds group changes (PUT the group with a
new tag). Measured from just before the API call: when each satellite received its desired
message, when it published its acknowledgement, and when Ground Control's status showed it.

  --sizes LIST        fleet sizes, comma-separated (default 100,1000,5000)
  --sites LIST        layouts: how many sites the satellites are spread over, comma-separated;
                      every size runs in every layout (default 1,100: all at one site, then
                      spread over 100 sites; the warm-up assigns the group to each site)
  --quick             --sizes 100,1000 --sites 1 --rounds 1
  --rounds N          group changes per size after the warm-up (default 3)
  --workers N         client processes (default 2, one per core)
  --poll-ms N         look at what Ground Control recorded every N ms during a round (default 200)
  --observe WAY       how: "api" = GET /api/v1/status?state=out-of-sync&limit=100 (default; the
                      operator's view: one page and the fleet-wide counts, counts.inSync = recorded),
                      "lmdb" = read its generations index directly, read-only, from this process
                      (no load on Ground Control)
  --round-timeout S   give up on a round after S seconds (default 120)
  --mosquitto-conf L  append line L to mosquitto.conf (repeatable), e.g. "max_queued_messages 0"
  --gc-node-options=S NODE_OPTIONS for Ground Control only (write it with =), e.g.
                      --gc-node-options="--cpu-prof --cpu-prof-dir=/tmp/gc-prof"
                      (read the profile with bench/cpuprofile-top.ts)
  --quiet-wait S      before each size and round, wait up to S seconds for other processes to use
                      under 10 % of the CPU (default 180; 0 = do not wait)
  --noise-retries N   run a round again when other processes used over 0.2 cores during it, up
                      to N times; the last attempt is kept (default 2)
  --concurrency N     API calls and MQTT logins in flight during set-up (default 16 and 16 × 8)
  --setup-only        per size: register N satellites, log them in, wait for them online, and
                      report those times (registrations/s, CPU split, RSS); no rounds

Everything listens on 127.0.0.1. Linux only: memory and CPU come from /proc.`;

export interface Options {
  sizes: number[];
  sites: number[];
  rounds: number;
  workers: number;
  pollMs: number;
  observe: 'api' | 'lmdb';
  roundTimeoutMs: number;
  mosquittoConf: string[];
  gcNodeOptions: string | undefined;
  concurrency: number;
  quietWaitSec: number;
  noiseRetries: number;
  setupOnly: boolean;
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
      sizes: { type: 'string' },
      sites: { type: 'string' },
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      workers: { type: 'string' },
      'poll-ms': { type: 'string' },
      observe: { type: 'string', default: 'api' },
      'round-timeout': { type: 'string' },
      'mosquitto-conf': { type: 'string', multiple: true },
      'gc-node-options': { type: 'string' },
      concurrency: { type: 'string' },
      'quiet-wait': { type: 'string' },
      'noise-retries': { type: 'string' },
      'setup-only': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const sizes = (values.sizes ?? (values.quick ? '100,1000' : '100,1000,5000')).split(',').map((s) => wholeNumber(s.trim(), '--sizes', 1, 20_000, 0));
  for (const line of values['mosquitto-conf'] ?? []) if (/[\r\n]/.test(line)) throw new Error('--mosquitto-conf takes one line');
  if (values.observe !== 'api' && values.observe !== 'lmdb') throw new Error(`--observe must be api or lmdb, got ${values.observe}`);
  const sites = (values.sites ?? (values.quick ? '1' : '1,100')).split(',').map((s) => wholeNumber(s.trim(), '--sites', 1, 1000, 0));
  return {
    sizes,
    sites,
    observe: values.observe,
    rounds: wholeNumber(values.rounds, '--rounds', 1, 20, values.quick ? 1 : 3),
    workers: wholeNumber(values.workers, '--workers', 1, 16, 2),
    pollMs: wholeNumber(values['poll-ms'], '--poll-ms', 20, 5000, 200),
    roundTimeoutMs: wholeNumber(values['round-timeout'], '--round-timeout', 5, 1800, 120) * 1000,
    mosquittoConf: values['mosquitto-conf'] ?? [],
    gcNodeOptions: values['gc-node-options'],
    concurrency: wholeNumber(values.concurrency, '--concurrency', 1, 256, 16),
    quietWaitSec: wholeNumber(values['quiet-wait'], '--quiet-wait', 0, 3600, 180),
    noiseRetries: wholeNumber(values['noise-retries'], '--noise-retries', 0, 10, 2),
    setupOnly: values['setup-only'],
  };
}

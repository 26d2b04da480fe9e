import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { defer, type Teardown } from './cleanup.ts';
import { spawnPeer, waitForLine, type ExitInfo, type PeerProcess } from './process.ts';
import { makeTempDir } from './tmp.ts';
import { deepMerge } from '../../src/lib/deep-merge.ts';

/** The repository root (the satellite runs with it as cwd). */
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');

export interface SatelliteOptions {
  /** Deep-merged over the defaults (objects merge, arrays and scalars replace). */
  config?: Record<string, unknown>;
  /** Reuse a data dir (restart tests); default a temp dir removed after the test. */
  dataDir?: string;
  /** Added to the inherited environment. */
  env?: Record<string, string>;
  /** Script to run instead of src/cli/satellite.ts (e.g. the esbuild bundle). */
  entry?: string;
  /** Extra node flags before the script. */
  nodeArgs?: string[];
  /** Extra CLI arguments after `serve --config FILE`. */
  args?: string[];
  /** How long to wait for "registry listening"; default 20 s. */
  readyTimeoutMs?: number;
}

/** A satellite process started by spawnSatellite; not necessarily ready. */
export interface SatelliteProcess {
  dataDir: string;
  configFile: string;
  /** The config as written. */
  config: Record<string, unknown>;
  proc: PeerProcess;
  /** Sends `signal` (default SIGTERM) without escalating; resolves on exit. */
  kill(signal?: NodeJS.Signals): Promise<ExitInfo>;
  /** SIGTERM, then SIGKILL after timeoutMs (default 10 s); resolves on exit. */
  stop(timeoutMs?: number): Promise<ExitInfo>;
  /** Its output (pino JSON lines), the last 10,000 lines. */
  logs(): string;
  /** Resolves with the first output line matching regex (from line `fromLine` on, see proc.nextLine). */
  waitForLog(regex: RegExp, timeoutMs?: number, fromLine?: number): Promise<RegExpExecArray>;
}

/** A satellite whose registry is listening. */
export interface Satellite extends SatelliteProcess {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT, for image references and hosts.toml */
  host: string;
  port: number;
}

export { deepMerge };

/**
 * Writes the config file and spawns `node src/cli/satellite.ts serve --config FILE` without waiting:
 * for tests of start-up failures (e.g. exit code 78 on a bad config). Stopped after the test.
 */
export async function spawnSatellite(t: Teardown, opts: SatelliteOptions = {}): Promise<SatelliteProcess> {
  const dataDir = opts.dataDir ?? (await makeTempDir(t, 'hs-satellite-data-'));
  const configFile = join(await makeTempDir(t, 'hs-satellite-config-'), 'satellite.json');
  // Most tests push through the registry without credentials: they opt in to anonymous pushes
  // explicitly (the product default is anonymous pull only); tests of that default set it false.
  const defaults = {
    dataDir,
    log: { level: 'info' },
    registry: { listen: { host: '127.0.0.1', port: 0 }, anonymousPush: true },
    // Every test satellite gets its own metrics port: parallel tests never share 127.0.0.1:9585.
    metrics: { listen: { host: '127.0.0.1', port: 0 } },
    // Run from source (type stripping, no bundle) a satellite idles near 135 MiB, above the board
    // profiles' memory soft limits (120 MiB on a Pi): the watchdog would shed. Tests of it set their own.
    memory: { softLimitBytes: 0 },
  };
  const config = deepMerge(defaults, opts.config ?? {});
  await writeFile(configFile, JSON.stringify(config, null, 2));

  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_TEST_CONTEXT; // set by `node --test` for its children; not meant for the satellite
  // A suite run from a systemd unit must not give every restart test the restart back-off.
  delete env.INVOCATION_ID;
  // Under a unit with RuntimeDirectory=, every satellite would share one admin socket path.
  delete env.RUNTIME_DIRECTORY;
  Object.assign(env, opts.env);
  const proc = spawnPeer(
    process.execPath,
    [...(opts.nodeArgs ?? []), opts.entry ?? join(REPO_ROOT, 'src', 'cli', 'satellite.ts'), 'serve', '--config', configFile, ...(opts.args ?? [])],
    { cwd: REPO_ROOT, env, maxLines: 10_000, name: 'satellite' },
  );
  defer(t, () => proc.stop(10_000));
  return {
    dataDir,
    configFile,
    config,
    proc,
    kill: (signal = 'SIGTERM') => proc.kill(signal),
    stop: (timeoutMs = 10_000) => proc.stop(timeoutMs),
    logs: () => proc.output(),
    waitForLog: (regex, timeoutMs = 10_000, fromLine = 0) => waitForLine(proc, regex, timeoutMs, fromLine),
  };
}

/**
 * Starts the satellite as a real process with a JSON config (data dir in a temp dir, registry on
 * 127.0.0.1 port 0, plus opts.config) and resolves once it logs `"msg":"registry listening"` with
 * its `"port"`. Stopped after the test.
 */
export async function startSatellite(t: Teardown, opts: SatelliteOptions = {}): Promise<Satellite> {
  const sat = await spawnSatellite(t, opts);
  const match = await waitForLine(sat.proc, /"msg":"registry listening"/, opts.readyTimeoutMs ?? 20_000);
  const line = match.input;
  let port: number | undefined;
  try {
    const record = JSON.parse(line) as { port?: unknown };
    if (typeof record.port === 'number') port = record.port;
  } catch {
    // not pure JSON (prefixed?): fall back to the regex below
  }
  port ??= Number(/"port":(\d+)/.exec(line)?.[1]);
  if (!Number.isInteger(port) || port <= 0) {
    await sat.stop();
    throw new Error(`satellite said it is listening but gave no port: ${line}`);
  }
  return { ...sat, url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, port };
}

/** One line of the satellite's request log (pino JSON, msg "request"). */
export interface RequestLogLine {
  method?: string;
  path: string;
  status: number;
  ms: number;
}

/** The requests the satellite has logged so far, oldest first. */
export function requestLog(sat: Pick<SatelliteProcess, 'logs'>): RequestLogLine[] {
  return sat
    .logs()
    .split('\n')
    .filter((l) => l.includes('"msg":"request"'))
    .map((l) => JSON.parse(l) as RequestLogLine);
}

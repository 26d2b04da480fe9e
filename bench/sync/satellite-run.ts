import { rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { defer, type Teardown } from '../../test/helpers/cleanup.ts';
import { startFaultProxy } from '../../test/helpers/fault-proxy.ts';
import type { PeerProcess } from '../../test/helpers/process.ts';
import { deepMerge, startSatellite } from '../../test/helpers/satellite.ts';
import { makeTempDir } from '../../test/helpers/tmp.ts';
import { cpuSeconds, CpuMeter, exeOf, readMem } from '../lib/proc-stats.ts';
import { mib } from '../lib/table.ts';
import { ScriptTeardown } from '../lib/teardown.ts';
import { countReplicated, type ImageSet } from './image-set.ts';
import { cpuShares, seconds, type RunResult } from './result.ts';

export interface SatelliteRunOptions {
  upstreamHost: string;
  upstreamPid: number;
  set: ImageSet;
  /** The esbuild bundle to run; undefined = src/cli/satellite.ts. */
  entry: string | undefined;
  nodeArgs: string[];
  /** Added to the satellite's environment. */
  env: Record<string, string>;
  /** Merged over the bench's own config. */
  satelliteConfig: Record<string, unknown>;
  cutBytes: number | undefined;
  /** WAN emulation in the proxy: ms added each way, and one shared rate upstream->tool. */
  wan?: { delayMs: number; rateBytesPerSec?: number } | undefined;
  /** After the set is applied, run once more with nothing changed and time that too. */
  unchangedRun?: boolean;
  timeoutMs: number;
}

/** The `"msg":"sync finished"` records the satellite logs, one per sync run. */
interface SyncFinished {
  generation?: number;
  result?: string;
  bytesFromUpstream?: number;
  blobsFetched?: number;
  blobsResumed?: number;
  errors?: number;
  resolveMs?: number;
  transferMs?: number;
}

/**
 * Resolves once a sync run of `generation` ends with result "ok" (finished), or when time runs
 * out or the process exits (not finished). A run that ends otherwise is retried by the satellite
 * on its own backoff, as it would be in the field: those runs count toward the wall time.
 */
function waitForApplied(proc: PeerProcess, generation: number, timeoutMs: number): Promise<{ finished: boolean; runs: SyncFinished[] }> {
  const runs: SyncFinished[] = [];
  return new Promise((resolve) => {
    const done = (finished: boolean) => {
      clearTimeout(timer);
      unsubscribe();
      resolve({ finished, runs });
    };
    const unsubscribe = proc.onLine((line) => {
      if (!line.includes('"msg":"sync finished"')) return;
      const run = JSON.parse(line) as SyncFinished;
      // The run at start-up, before any desired state, reports generation 0: not ours.
      if (run.generation !== generation) return;
      runs.push(run);
      if (run.result === 'ok') done(true);
    });
    const timer = setTimeout(() => done(false), timeoutMs);
    void proc.exited.then(() => done(false));
  });
}

/**
 * The satellite replicates the set into an empty data dir through a fault proxy in front of the
 * upstream. The process is started first and waits (its desired-state file does not exist yet);
 * the clock starts when the file is written, as Ground Control's update would arrive.
 */
export async function runSatellite(parent: Teardown, opts: SatelliteRunOptions): Promise<RunResult> {
  const t = new ScriptTeardown();
  defer(parent, () => t.run());
  try {
    const proxy = await startFaultProxy(t, { target: opts.upstreamHost, ...(opts.cutBytes ? { cutEveryBytes: opts.cutBytes } : {}), ...opts.wan });
    const desiredFile = join(await makeTempDir(t, 'hs-bench-desired-'), 'desired.json');
    const config = deepMerge(
      { log: { level: 'info' }, sync: { desiredStateFile: desiredFile, intervalSeconds: 3600 }, store: { gcGraceSeconds: 0 } },
      opts.satelliteConfig,
    );
    const spawned = process.hrtime.bigint();
    const sat = await startSatellite(t, { config, nodeArgs: opts.nodeArgs, env: opts.env, ...(opts.entry ? { entry: opts.entry } : {}) });
    // The registry listens before the sync engine watches the desired-state file: a file written in
    // between is seen by the 5 s poll, not the watch (one run here took 6.15 s instead of 1.2).
    await sat.waitForLog(/"msg":"satellite started"/, 30_000);
    const startupSec = seconds(spawned);
    const pid = sat.proc.pid!;
    if (basename(exeOf(pid)) === 'setpriv') throw new Error(`satellite pid ${pid} is still the setpriv wrapper`);

    const idleRssKiB = readMem(pid).rssKiB;
    const meter = new CpuMeter([opts.upstreamPid, pid]);
    const cpuBefore = cpuSeconds(pid);
    const started = process.hrtime.bigint();
    const applied = waitForApplied(sat.proc, 1, opts.timeoutMs);
    const doc = {
      generation: 1,
      upstream: { url: proxy.url },
      images: opts.set.images.map((img) => ({ repository: img.repository, tags: [img.tag] })),
    };
    // Temp file and rename: the satellite never reads half a document.
    await writeFile(`${desiredFile}.tmp`, JSON.stringify(doc, null, 2));
    await rename(`${desiredFile}.tmp`, desiredFile);
    const { finished, runs } = await applied;
    const wallSec = seconds(started);
    const bytesFromUpstream = proxy.bytesFromTarget();
    const split = meter.stop();
    const connections = proxy.connections();
    let unchanged: RunResult['unchanged'];
    if (opts.unchangedRun && finished && sat.proc.exitInfo === undefined) {
      // Nothing moved upstream: a new generation makes the satellite re-check every tag.
      const bytes0 = proxy.bytesFromTarget();
      const conns0 = proxy.connections();
      proxy.clearRequests();
      const again = waitForApplied(sat.proc, 2, opts.timeoutMs);
      const t0 = process.hrtime.bigint();
      await writeFile(`${desiredFile}.tmp`, JSON.stringify({ ...doc, generation: 2 }, null, 2));
      await rename(`${desiredFile}.tmp`, desiredFile);
      const second = await again;
      unchanged = {
        finished: second.finished,
        wallSec: seconds(t0),
        bytesFromUpstream: proxy.bytesFromTarget() - bytes0,
        requests: proxy.requests().length,
        newConnections: proxy.connections() - conns0,
        ...(second.runs.at(-1)?.resolveMs !== undefined ? { resolveMs: second.runs.at(-1)!.resolveMs! } : {}),
      };
    }

    const alive = sat.proc.exitInfo === undefined;
    const mem = alive ? readMem(pid) : undefined;
    const peakRssKiB = mem?.hwmKiB ?? Number.NaN;
    const cpuSec = alive ? cpuSeconds(pid) - cpuBefore : Number.NaN;
    const images = alive ? await countReplicated(sat.url, opts.set) : 0;
    const resumed = runs.reduce((sum, r) => sum + (r.blobsResumed ?? 0), 0);
    const counted = runs.reduce((sum, r) => sum + (r.bytesFromUpstream ?? 0), 0);
    const notes = [
      `${runs.length} sync run(s): ${runs.map((r) => r.result ?? '?').join(', ') || 'none'}`,
      `blobsResumed ${resumed} (counts partials left by an earlier run, not resumes within this one)`,
      `satellite counted ${counted} body bytes from upstream`,
      `resolve ${runs.at(-1)?.resolveMs ?? '?'} ms, transfer ${runs.at(-1)?.transferMs ?? '?'} ms (last run's report)`,
      `start-up ${startupSec.toFixed(2)} s before the clock started, RSS ${mib(idleRssKiB)} MiB idle`,
    ];
    // Anonymous (heap, buffers) against file-backed (binary, LMDB map) memory when the sync ended.
    if (mem) notes.push(`RSS at the end ${mib(mem.rssKiB)} MiB (anon ${mib(mem.rssAnonKiB)}, file ${mib(mem.rssFileKiB)})`);
    if (!alive) notes.push(`satellite exited: ${sat.proc.describe()}`);
    // SIGTERM and wait: a --cpu-prof profile is written on the way out.
    await sat.stop(30_000);
    const output = sat.logs();
    return {
      finished: finished && images === opts.set.images.length,
      images,
      wallSec,
      bytesFromUpstream,
      connections,
      ...(unchanged ? { unchanged } : {}),
      cuts: proxy.cuts(),
      peakRssKiB,
      cpuSec,
      cpu: cpuShares(split, opts.upstreamPid),
      output,
      notes,
    };
  } finally {
    await t.run();
  }
}

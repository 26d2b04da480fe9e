import type { CpuSplit } from '../lib/proc-stats.ts';

/** One replication run of one tool, measured the same way for both. */
export interface RunResult {
  /** Every image of the set replicated with the upstream's manifest digest, within the time limit. */
  finished: boolean;
  /** Images replicated (of the set's count). */
  images: number;
  /** From the start of the sync (desired state written / skopeo spawned) to done or given up. */
  wallSec: number;
  /** Bytes the fault proxy forwarded upstream -> tool: bodies and HTTP headers, every connection. */
  bytesFromUpstream: number;
  connections: number;
  /** Connections the proxy cut (cut scenario). */
  cuts: number;
  /** Peak resident set of the tool's process (VmHWM / GNU time's maximum RSS). */
  peakRssKiB: number;
  /** CPU seconds (user + system) of the tool's process. */
  cpuSec: number;
  /** The destination docker-registry's peak RSS and CPU (skopeo only: the satellite is its own store). */
  dest?: { peakRssKiB: number; cpuSec: number };
  /**
   * Cores used during the run, from /proc: the upstream registry, this script (the fault proxy
   * forwards every byte in it), and everything else on the machine (noise: > 0.2 makes a run suspect).
   */
  cpu: { upstream: number; harness: number; other: number };
  /** The tool's own output (the last lines kept), for --logs. */
  output: string;
  /** The satellite's second run with nothing changed upstream (--unchanged). */
  unchanged?: { finished: boolean; wallSec: number; bytesFromUpstream: number; requests: number; newConnections: number; resolveMs?: number };
  /** What else the run said (sync runs, resumed blobs, exit status). */
  notes: string[];
}

export const seconds = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e9;

/** How many cores the run's own processes used, and what the rest of the machine did meanwhile. */
export function cpuShares(split: CpuSplit, upstreamPid: number): RunResult['cpu'] {
  return { upstream: split.cores.get(upstreamPid) ?? Number.NaN, harness: split.harness, other: split.other };
}

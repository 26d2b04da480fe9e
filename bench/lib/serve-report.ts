import type { MemStatus, PeakTracker, PhaseMem } from './proc-stats.ts';
import type { Options } from './serve-options.ts';
import { fmt, formatTable, mib } from './table.ts';
import type { WrkResult } from './wrk.ts';

/** The goals the satellite is measured against (docs/benchmarks.md). */
export const TARGETS = { reqRatio: 1.5, throughputRatio: 0.9, rssMiB: 96 } as const;

/** Phases in run order; each has its own peak RSS. */
export const PHASES = [
  ['push', 'push'],
  ['verify', 'GET 256 MiB, verify digest'],
  ['blob', 'wrk 1 MiB blob'],
  ['manifest', 'wrk manifest'],
  ['single', '1 stream'],
  ['parallel', '8 streams'],
  ['slow', '64 slow streams'],
] as const;
export type PhaseName = (typeof PHASES)[number][0];

/** CPU during a measurement, in cores (1 = one core busy for the whole time). */
export interface CpuShare {
  server: number;
  /** wrk or curl processes. */
  clients: number;
  /** This script (it reads the satellite's log lines). */
  harness: number;
  /** Everything else on the machine: noise. */
  other: number;
  /** Busy share of all cores. */
  machineBusy: number;
}

/** Noise above this (cores used by other processes) marks a measurement as suspect. */
export const NOISY_CORES = 0.2;

export interface Throughput {
  /** 10^6 bytes per second. */
  mbps: number;
  cpu: CpuShare;
}

/** The best of several rounds, with the figure of every round. */
export type Best<T> = T & { all: number[] };

export interface ServerResults {
  pushSec: number;
  blob: Best<WrkResult & { cpu: CpuShare }>;
  manifest: Best<WrkResult & { cpu: CpuShare }>;
  single: Best<Throughput>;
  parallel: Best<Throughput>;
  slow: Throughput & { wallSec: number; sampled: MemStatus | undefined; perClientMBps: number };
  mem: PeakTracker;
  final: MemStatus;
}

export interface Sizes {
  small: number;
  large: number;
}

const MiB = 1024 * 1024;

/** The target table, a details table and notes on method, as Markdown. */
export function report(opts: Options, sat: ServerResults, reg: ServerResults, sizes: Sizes): string {
  const verdict = (ok: boolean) => (ok ? 'yes' : 'NO');
  const ratioRow = (metric: string, x: number, y: number, min: number): string[] => [
    metric,
    fmt(x),
    fmt(y),
    `${fmt(x / y, 2)}×`,
    `≥ ${min}×`,
    verdict(x / y >= min),
  ];
  const slowPeak = (r: ServerResults) => r.mem.phases.get('slow')?.peakKiB ?? Number.NaN;
  const wholePeak = (r: ServerResults) => r.mem.wholeRunKiB();
  const small = `${fmt(sizes.small / MiB, 2)} MiB`;
  const large = `${fmt(sizes.large / MiB)} MiB`;

  const main = formatTable(
    ['metric', 'satellite', 'docker-registry', 'ratio (sat/reg)', 'target', 'met'],
    [
      ratioRow(`GET ${small} blob, 32 conns (req/s)`, sat.blob.requestsPerSec, reg.blob.requestsPerSec, TARGETS.reqRatio),
      ratioRow('GET manifest by tag, 32 conns (req/s)', sat.manifest.requestsPerSec, reg.manifest.requestsPerSec, TARGETS.reqRatio),
      ratioRow(`GET ${large} blob, 1 conn (MB/s)`, sat.single.mbps, reg.single.mbps, TARGETS.throughputRatio),
      ratioRow(`GET ${large} blob, ${opts.parallelClients} conns (MB/s total)`, sat.parallel.mbps, reg.parallel.mbps, TARGETS.throughputRatio),
      [
        `peak RSS, ${opts.slowClients} × ${large} downloads (VmHWM, MiB)`,
        mib(slowPeak(sat)),
        mib(slowPeak(reg)),
        `${fmt(slowPeak(sat) / slowPeak(reg), 2)}×`,
        `sat ≤ ${TARGETS.rssMiB} MiB`,
        verdict(slowPeak(sat) / 1024 <= TARGETS.rssMiB),
      ],
      ['peak RSS, whole run (VmHWM, MiB)', mib(wholePeak(sat)), mib(wholePeak(reg)), `${fmt(wholePeak(sat) / wholePeak(reg), 2)}×`, '—', '—'],
    ],
  );

  const both = (f: (r: ServerResults) => string): [string, string] => [f(sat), f(reg)];
  const cpu = (c: CpuShare) =>
    `${fmt(c.server, 2)} · ${fmt(c.clients, 2)} · ${fmt(c.other, 2)}${c.other > NOISY_CORES ? ' (noisy)' : ''}`;
  const lat = (w: WrkResult) => `${fmt(w.latencyMs.p50, 1)} / ${fmt(w.latencyMs.p99, 1)} ms`;
  const phaseMem = (m: PhaseMem | undefined) =>
    m ? `${mib(m.startKiB)} → ${mib(m.peakKiB)}${m.exact ? '' : ' (peak so far)'} → ${mib(m.endKiB)}` : '—';
  const split = (m: MemStatus | undefined) =>
    m ? `${mib(m.rssKiB)} (anon ${mib(m.rssAnonKiB)}, file ${mib(m.rssFileKiB)}, ${m.threads} threads)` : '—';
  const details = formatTable(
    ['detail', 'satellite', 'docker-registry'],
    [
      [`GET ${small} blob: latency p50 / p99`, ...both((r) => lat(r.blob))],
      ['GET manifest: latency p50 / p99', ...both((r) => lat(r.manifest))],
      [`GET ${small} blob: MB/s moved (wrk Transfer/sec)`, ...both((r) => fmt(r.blob.transferPerSec / 1e6))],
      [`CPU, GET ${small} blob: server · clients · other`, ...both((r) => cpu(r.blob.cpu))],
      ['CPU, GET manifest: server · clients · other', ...both((r) => cpu(r.manifest.cpu))],
      ['CPU, 1 stream: server · clients · other', ...both((r) => cpu(r.single.cpu))],
      [`CPU, ${opts.parallelClients} streams: server · clients · other`, ...both((r) => cpu(r.parallel.cpu))],
      [`CPU, ${opts.slowClients} slow streams: server · clients · other`, ...both((r) => cpu(r.slow.cpu))],
      [`GET ${small} blob: req/s by round`, ...both((r) => r.blob.all.map((n) => fmt(n)).join(', '))],
      ['GET manifest: req/s by round', ...both((r) => r.manifest.all.map((n) => fmt(n)).join(', '))],
      ['1 stream: MB/s by round', ...both((r) => r.single.all.map((n) => fmt(n)).join(', '))],
      [`${opts.parallelClients} streams: MB/s by round`, ...both((r) => r.parallel.all.map((n) => fmt(n)).join(', '))],
      [`${opts.slowClients} slow streams: wall s, total MB/s, MB/s per client`, ...both((r) => `${fmt(r.slow.wallSec, 1)} s, ${fmt(r.slow.mbps)}, ${fmt(r.slow.perClientMBps, 1)}`)],
      [`${opts.slowClients} slow streams: largest VmRSS sampled (MiB)`, ...both((r) => split(r.slow.sampled))],
      ...PHASES.map(([key, label]) => [`RSS ${label}: start → peak → end (MiB)`, ...both((r) => phaseMem(r.mem.phases.get(key)))]),
      ['RSS at the end (MiB)', ...both((r) => split(r.final))],
      ['push of all content over HTTP (s)', ...both((r) => fmt(r.pushSec, 1))],
    ],
  );
  const shares = [sat, reg].flatMap((r) => [r.blob.cpu, r.manifest.cpu, r.single.cpu, r.parallel.cpu, r.slow.cpu]);
  const harness = Math.max(...shares.map((c) => c.harness));
  const noisy = shares.filter((c) => c.other > NOISY_CORES).length;
  return [
    main,
    '',
    details,
    '',
    'MB/s = 10^6 B/s; memory in MiB (VmHWM/VmRSS from /proc/PID/status, VmHWM reset per phase with clear_refs);',
    'CPU in cores (server utime+stime / wall; clients = wrk/curl; other = the rest of the machine, i.e. noise).',
    `Best of ${opts.rounds} round(s), servers alternating. wrk -t2 -c32 -d${opts.durationSec}s --latency, ${opts.warmupSec} s warm-up in round 1;`,
    `1 stream = bytes / curl time_total of ${opts.singleReps} downloads; ${opts.parallelClients} streams = bytes / wall time of ${opts.parallelReps} × ${opts.parallelClients} downloads;`,
    `slow clients: curl --limit-rate ${opts.slowRate}. CPU and latency columns are those of the best round.`,
    `This script (it reads the satellite's per-request log lines) used at most ${fmt(harness, 2)} cores in any phase.`,
    noisy > 0
      ? `WARNING: other processes used more than ${NOISY_CORES} cores in ${noisy} of ${shares.length} measurements: re-run on a quiet machine.`
      : `Other processes stayed under ${NOISY_CORES} cores in every measurement.`,
  ].join('\n');
}

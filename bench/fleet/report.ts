import type { MemStatus } from '../lib/proc-stats.ts';
import { fmt, formatTable, mib } from '../lib/table.ts';
import type { RoundResult } from './round.ts';

/**
 * Issue 11's targets, per size: desired delivered p99 (where set) and acknowledgement recorded by
 * Ground Control p99, in seconds, with every satellite online and every acknowledgement recorded.
 */
export const TARGETS: Array<{ n: number; deliveredP99Sec?: number; recordedP99Sec: number }> = [
  { n: 1000, deliveredP99Sec: 0.5, recordedP99Sec: 1.5 },
  { n: 5000, recordedP99Sec: 3 },
  { n: 10000, recordedP99Sec: 5 },
];
/** Cores other processes may use during a round before it is flagged noisy. */
export const NOISY_CORES = 0.2;

export interface SizeResult {
  n: number;
  /** How many sites the satellites are spread over (1: all at one site). */
  sites: number;
  createMs: number;
  registerMs: number;
  connectMs: number;
  connectRetries: number;
  connectFailed: number;
  /** ms from the first login until Ground Control's status showed every satellite online (NaN = never). */
  onlineMs: number;
  warmup: RoundResult;
  rounds: RoundResult[];
  gcRoundsPeakKiB: number;
  gcWholeRunKiB: number;
  gcBeforeRoundsKiB: number;
  /** Ground Control's memory after the rounds: anonymous (heap, buffers) vs file-backed (LMDB map, code). */
  gcEnd: MemStatus;
  mosqRoundsPeakKiB: number;
  mosqWholeRunKiB: number;
  /** Messages Ground Control rejected (status.rejected.count) at the end. */
  rejected: number;
  /** Satellites online in Ground Control's status before the rounds. */
  online: number;
  /** mosquitto's "Outgoing messages are being dropped for client X" notices, by client. */
  mosqDrops: Record<string, number>;
  clientErrors: number;
  /** Rounds run again because other processes were busy during them. */
  discarded: number;
  pids: { gc: number; mosq: number; workers: number[] };
}

/** Nearest-rank percentile; a missing value (NaN: never happened) counts as infinitely late. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = values.map((v) => (Number.isNaN(v) ? Number.POSITIVE_INFINITY : v)).sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const median = (xs: number[]) => percentile(xs, 50);
const sec = (ms: number) => (ms === Number.POSITIVE_INFINITY ? 'never' : fmt(ms / 1000, 2));

export interface Spread {
  p50: number;
  p99: number;
  max: number;
}

export function spread(values: number[]): Spread {
  return { p50: percentile(values, 50), p99: percentile(values, 99), max: percentile(values, 100) };
}

const spreadText = (s: Spread) => `${sec(s.p50)} / ${sec(s.p99)} / ${sec(s.max)}`;

/** Each statistic as the median over the rounds (one round: that round). */
function medianSpread(rounds: RoundResult[], pick: (r: RoundResult) => number[]): Spread {
  const s = rounds.map((r) => spread(pick(r)));
  return { p50: median(s.map((x) => x.p50)), p99: median(s.map((x) => x.p99)), max: median(s.map((x) => x.max)) };
}

function worstSpread(rounds: RoundResult[], pick: (r: RoundResult) => number[]): Spread {
  const s = rounds.map((r) => spread(pick(r)));
  return { p50: Math.max(...s.map((x) => x.p50)), p99: Math.max(...s.map((x) => x.p99)), max: Math.max(...s.map((x) => x.max)) };
}

/** N, and the layout when the satellites are spread over several sites. */
const sizeLabel = (s: SizeResult) => (s.sites === 1 ? `${s.n}, 1 site` : `${s.n}, ${s.sites} sites`);

const gcCpuSec = (r: RoundResult, gcPid: number) => (r.cpu.cores.get(gcPid) ?? Number.NaN) * r.wallSec;
const cores = (r: RoundResult, pid: number) => fmt(r.cpu.cores.get(pid) ?? Number.NaN, 2);

export function summaryTable(sizes: SizeResult[]): string {
  const header = [
    'N',
    'desired delivered p50 / p99 / max (s)',
    'ack published at client p50 / p99 / max (s)',
    'ack recorded by GC p50 / p99 / max = all acknowledged (s)',
    'all acknowledged, worst round (s)',
    'GC peak RSS (MiB)',
    'GC CPU per round (s; cores)',
    'mosquitto peak RSS (MiB)',
  ];
  const rows = sizes.map((s) => {
    const gcCpu = s.rounds.map((r) => gcCpuSec(r, s.pids.gc));
    const gcCores = s.rounds.map((r) => r.cpu.cores.get(s.pids.gc) ?? Number.NaN);
    return [
      sizeLabel(s),
      spreadText(medianSpread(s.rounds, (r) => r.received)),
      spreadText(medianSpread(s.rounds, (r) => r.acked)),
      s.rounds.some((r) => r.incomplete)
        ? `${spreadText(medianSpread(s.rounds, (r) => r.gcSeen))}: at most ${Math.max(...s.rounds.map((r) => r.ackedInGc))}/${s.n} recorded`
        : spreadText(medianSpread(s.rounds, (r) => r.gcSeen)),
      sec(Math.max(...s.rounds.map((r) => (Number.isNaN(r.allAckedMs) ? Number.POSITIVE_INFINITY : r.allAckedMs)))),
      mib(s.gcRoundsPeakKiB),
      `${fmt(median(gcCpu), 2)}; ${fmt(median(gcCores), 2)}`,
      mib(s.mosqRoundsPeakKiB),
    ];
  });
  return formatTable(header, rows);
}

export function roundsTable(sizes: SizeResult[]): string {
  const header = [
    'N',
    'round',
    'API answer (ms)',
    'published',
    'delivered p50 / p99 / max (s)',
    'ack at client p50 / p99 / max (s)',
    'broker PUBACK of ack p99 (s)',
    'recorded by GC p50 / p99 / max (s)',
    'observations: n, median ms',
    'CPU cores: GC · mosquitto · clients · harness · other',
  ];
  const rows: string[][] = [];
  for (const s of sizes) {
    for (const r of [s.warmup, ...s.rounds]) {
      const clients = s.pids.workers.reduce((a, pid) => a + (r.cpu.cores.get(pid) ?? 0), 0);
      const noisy = r.cpu.other > NOISY_CORES ? ' (noisy)' : '';
      rows.push([
        sizeLabel(s),
        r.label,
        fmt(r.apiMs),
        String(r.published),
        spreadText(spread(r.received)),
        spreadText(spread(r.acked)),
        sec(percentile(r.brokerAcked, 99)),
        r.incomplete ? `${spreadText(spread(r.gcSeen))}; only ${r.ackedInGc}/${r.n}` : spreadText(spread(r.gcSeen)),
        `${r.polls.length}, ${fmt(median(r.polls))}`,
        `${cores(r, s.pids.gc)} · ${cores(r, s.pids.mosq)} · ${fmt(clients, 2)} · ${fmt(r.cpu.harness, 2)} · ${fmt(r.cpu.other, 2)}${noisy}`,
      ]);
    }
  }
  return formatTable(header, rows);
}

export function setupTable(sizes: SizeResult[]): string {
  const header = ['N', 'create (s)', 'register (s)', 'MQTT logins (s; retries)', 'all online in GC (s)', 'GC RSS before rounds → peak whole run (MiB)', 'GC RSS at the end: anon + file (MiB)', 'mosquitto peak whole run (MiB)', 'rejected', 'mosquitto "messages dropped" notices', 'client errors', 'noisy rounds re-run'];
  const rows = sizes.map((s) => [
    sizeLabel(s),
    fmt(s.createMs / 1000, 1),
    fmt(s.registerMs / 1000, 1),
    `${fmt(s.connectMs / 1000, 1)}; ${s.connectRetries}${s.connectFailed ? `, ${s.connectFailed} FAILED` : ''}`,
    Number.isNaN(s.onlineMs) ? `only ${s.online}` : fmt(s.onlineMs / 1000, 1),
    `${mib(s.gcBeforeRoundsKiB)} → ${mib(s.gcWholeRunKiB)}`,
    `${mib(s.gcEnd.rssAnonKiB)} + ${mib(s.gcEnd.rssFileKiB)}`,
    mib(s.mosqWholeRunKiB),
    String(s.rejected),
    Object.entries(s.mosqDrops).map(([c, k]) => `${c}: ${k}`).join(', ') || '0',
    String(s.clientErrors),
    String(s.discarded),
  ]);
  return formatTable(header, rows);
}

/** The verdict on each target, judged on the worst round's p99 (as Ground Control recorded it). */
export function targetLines(sizes: SizeResult[]): string[] {
  const lines: string[] = [];
  for (const s of sizes) {
    const target = TARGETS.find((x) => x.n === s.n);
    if (!target) continue;
    const gc = worstSpread(s.rounds, (r) => r.gcSeen);
    const delivered = worstSpread(s.rounds, (r) => r.received);
    const misses: string[] = [];
    if (s.online < s.n) misses.push(`only ${s.online}/${s.n} online`);
    if (s.rounds.some((r) => r.incomplete)) misses.push('not every acknowledgement recorded');
    if (!(gc.p99 <= target.recordedP99Sec * 1000)) misses.push(`recorded p99 ${sec(gc.p99)} s > ${target.recordedP99Sec} s`);
    if (target.deliveredP99Sec !== undefined && !(delivered.p99 <= target.deliveredP99Sec * 1000)) misses.push(`delivered p99 ${sec(delivered.p99)} s > ${target.deliveredP99Sec} s`);
    const goal = `${target.deliveredP99Sec !== undefined ? `delivered p99 ≤ ${target.deliveredP99Sec} s, ` : ''}recorded p99 ≤ ${target.recordedP99Sec} s, all online and recorded`;
    lines.push(
      `target at ${sizeLabel(s)} (${goal}): ${misses.length === 0 ? 'MET' : `NOT MET (${misses.join('; ')})`} — worst round: delivered p99 ${sec(delivered.p99)} s, recorded p99 ${sec(gc.p99)} s`,
    );
  }
  return lines.length > 0 ? lines : [`targets are set for N = ${TARGETS.map((x) => x.n).join(', ')}: none measured in this run`];
}

export function report(sizes: SizeResult[], header: string[]): string {
  return [
    ...header,
    '',
    summaryTable(sizes),
    '',
    ...targetLines(sizes),
    '',
    'Every round (warm-up = the group assigned to the site(s), generation 1; r1.. = PUT of the group with a new tag):',
    '',
    roundsTable(sizes),
    '',
    'Set-up (not timed as part of a round):',
    '',
    setupTable(sizes),
  ].join('\n');
}

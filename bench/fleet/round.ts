import { setTimeout as sleep } from 'node:timers/promises';
import { CpuMeter, type CpuSplit } from '../lib/proc-stats.ts';
import type { SimFleet } from './clients.ts';
import type { Timing } from './ipc.ts';
import type { AckObserver } from './observe.ts';

/** A round ends early when every client has published and Ground Control records nothing new for this long. */
const STALL_MS = 10_000;

export interface RoundResult {
  label: string;
  generation: number;
  n: number;
  /** How long the group-change API call took to answer (ms). */
  apiMs: number;
  /** Satellites the API answer says got the new generation. */
  published: number;
  /** Per satellite, ms after t0: desired received, state published, state PUBACKed by the broker. */
  received: number[];
  acked: number[];
  brokerAcked: number[];
  /**
   * Per acknowledgement, ms after t0 at which an observation first counted it as recorded (the
   * observation's answer time: an upper bound, within one poll interval). NaN = never.
   */
  gcSeen: number[];
  /** ms after t0 when every satellite was acknowledged in the status (NaN = timed out). */
  allAckedMs: number;
  /** Satellites Ground Control had recorded as acknowledged when the round ended. */
  ackedInGc: number;
  /** Why the round ended without every acknowledgement ('' when all were recorded). */
  incomplete: string;
  /** How long each observation took (ms). */
  polls: number[];
  cpu: CpuSplit;
  wallSec: number;
}

/**
 * One group change: t0 just before the API call, then the observer (GET /api/v1/status, or Ground
 * Control's database read directly) every pollMs until every satellite shows the new generation
 * acknowledged, the timeout, or a stall; CPU of every process is metered from t0 until then. Then
 * the clients' own timings are collected.
 */
export async function runRound(opts: {
  label: string;
  observer: AckObserver;
  fleet: SimFleet;
  n: number;
  generation: number;
  change: () => Promise<{ status: number; body: any }>;
  pids: number[];
  pollMs: number;
  timeoutMs: number;
}): Promise<RoundResult> {
  const { observer, n, generation } = opts;
  let clientsDoneAt = 0;
  void opts.fleet.allPublished(generation).then(() => (clientsDoneAt = Date.now()));
  const cpuMeter = new CpuMeter(opts.pids);
  const t0 = Date.now();
  const answer = await opts.change();
  const apiMs = Date.now() - t0;
  if (answer.status !== 200 && answer.status !== 201) throw new Error(`${opts.label}: group change answered ${answer.status} ${JSON.stringify(answer.body)}`);
  const published = Array.isArray(answer.body?.published) ? answer.body.published.length : Number.NaN;

  // Times at which each acknowledgement was first seen: the count recorded grows between polls,
  // and every new one is placed at the answer time of the poll that first counted it.
  const seen: number[] = [];
  const polls: number[] = [];
  let allAckedMs = Number.NaN;
  let incomplete = '';
  let lastNewAt = t0;
  for (;;) {
    const start = Date.now();
    const count = Math.min(n, await observer.recorded(generation));
    const end = Date.now();
    polls.push(end - start);
    const before = seen.length;
    while (seen.length < count) seen.push(end - t0);
    if (seen.length > before) lastNewAt = end;
    if (seen.length >= n) {
      allAckedMs = end - t0;
      break;
    }
    if (end - t0 > opts.timeoutMs) {
      incomplete = `timed out after ${opts.timeoutMs / 1000} s`;
      break;
    }
    if (clientsDoneAt > 0 && end - Math.max(lastNewAt, clientsDoneAt) > STALL_MS) {
      incomplete = `every client had acknowledged; Ground Control recorded nothing new for ${STALL_MS / 1000} s`;
      break;
    }
    await sleep(Math.max(0, opts.pollMs - (end - start)));
  }
  const cpu = cpuMeter.stop();
  const wallSec = (Date.now() - t0) / 1000;

  const timings: Timing[] = await opts.fleet.collect(generation);
  const rel = (i: 0 | 1 | 2) => timings.map((t) => t[i] - t0);
  const gcSeen = [...seen];
  while (gcSeen.length < n) gcSeen.push(Number.NaN);
  return {
    label: opts.label,
    generation,
    n,
    apiMs,
    published,
    received: rel(0),
    acked: rel(1),
    brokerAcked: rel(2),
    gcSeen,
    allAckedMs,
    ackedInGc: seen.length,
    incomplete,
    polls,
    cpu,
    wallSec,
  };
}

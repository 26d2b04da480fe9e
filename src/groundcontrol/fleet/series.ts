import type { StateMessage } from '../../protocol/index.ts';
import type { GcDb } from '../db/db.ts';
import type { StatusRecord } from '../db/records.ts';
import { addToSeries, BUCKET_MS, DETAIL_KEPT_MS, HOUR_MS, readDetail, readHourly, SERIES_METRICS, type SeriesMetric } from '../db/series.ts';
import { gcError } from '../errors.ts';

/**
 * Traffic over time from the satellites' cumulative counters (StateMessage.traffic and .proxy,
 * counted since the satellite process started). Each state report adds what moved since the
 * previous one — read from the stored status, so nothing extra is kept per satellite — to the
 * five-minute bucket of the report's time (db/series.ts stores and ages them).
 */

type Counters = Pick<StateMessage, 'traffic' | 'proxy' | 'process'>;

/** The counters behind SERIES_METRICS, in that order (undefined: the satellite does not report it). */
export function countersOf(s: Counters): Array<number | undefined> {
  return [s.traffic?.bytesFromUpstream, s.traffic?.bytesServed, s.proxy?.bytesServedFromCache, s.traffic?.bytesFromPeers, s.traffic?.bytesToPeers];
}

/**
 * What moved between two reports, per metric, never negative. The counters restart at 0 with the
 * process: a smaller uptime or any counter going down is a restart, and then everything counted
 * since is new. Without a previous report (or a counter it lacked) there is no baseline: 0.
 */
export function counterDeltas(prev: Counters | null | undefined, next: Counters): number[] {
  const after = countersOf(next);
  if (!prev) return after.map(() => 0);
  const before = countersOf(prev);
  const up0 = prev.process?.uptimeSeconds;
  const up1 = next.process?.uptimeSeconds;
  const restarted =
    (up0 !== undefined && up1 !== undefined && up1 < up0) || after.some((v, i) => v !== undefined && before[i] !== undefined && v < (before[i] as number));
  return after.map((v, i) => {
    if (v === undefined) return 0;
    if (restarted) return v;
    const b = before[i];
    return b === undefined ? 0 : v - b;
  });
}

/** Where a report's deltas go: its own time, kept inside the detail window and never in the future. */
export function bucketTime(reportAt: string, nowMs: number): number {
  const t = Date.parse(reportAt);
  const earliest = nowMs - DETAIL_KEPT_MS + HOUR_MS;
  return Number.isFinite(t) ? Math.min(Math.max(t, earliest), nowMs) : nowMs;
}

/** Inside the report batch's transaction: adds a state report to its satellite's series. */
export function recordSeries(db: GcDb, id: string, before: StatusRecord['state'], m: StateMessage, nowMs: number): void {
  addToSeries(db, id, bucketTime(m.at, nowMs), nowMs, counterDeltas(before, m));
}

export const SERIES_RANGES = { '6h': 6 * HOUR_MS, '24h': 24 * HOUR_MS, '48h': 48 * HOUR_MS, '7d': 7 * 24 * HOUR_MS, '30d': 30 * 24 * HOUR_MS } as const;
export type SeriesRange = keyof typeof SERIES_RANGES;

export interface SeriesView {
  satelliteId: string;
  range: SeriesRange;
  /** 300 (five-minute buckets) up to 48h, 3600 beyond. */
  bucketSeconds: number;
  /** Bucket starts, epoch seconds, oldest first, every bucket of the range (0 where nothing moved). */
  t: number[];
  /** Bytes per bucket, one array per metric, aligned with t. */
  values: Record<SeriesMetric, number[]>;
}

/** A satellite's series over the last `range`, dense (uPlot's columnar shape). */
export function seriesOf(db: GcDb, id: string, range: SeriesRange, nowMs: number): SeriesView {
  if (!db.satellites.get(id)) throw gcError('SATELLITE_UNKNOWN', `no satellite ${id}`);
  const span = SERIES_RANGES[range];
  const step = span <= DETAIL_KEPT_MS ? BUCKET_MS : HOUR_MS;
  const to = Math.floor(nowMs / step) * step + step;
  const from = to - Math.ceil(span / step) * step;
  const found = step === BUCKET_MS ? readDetail(db, id, from, to) : readHourly(db, id, from, to);
  const t: number[] = [];
  const values = Object.fromEntries(SERIES_METRICS.map((m) => [m, [] as number[]])) as Record<SeriesMetric, number[]>;
  for (let at = from; at < to; at += step) {
    t.push(at / 1000);
    const v = found.get(at);
    SERIES_METRICS.forEach((m, i) => values[m].push(v?.[i] ?? 0));
  }
  return { satelliteId: id, range, bucketSeconds: step / 1000, t, values };
}

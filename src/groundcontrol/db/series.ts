import type { GcDb } from './db.ts';

/**
 * Per-satellite traffic time series (fleet/series.ts computes what goes in). Two tables:
 * - series5m: [satelliteId, hourStart] -> SERIES_METRICS.length x 12 five-minute buckets, flat
 *   (bucket-major): the detail, kept DETAIL_KEPT_MS;
 * - seriesHourly: [satelliteId, hourStart] -> one total per metric, for hours older than the
 *   detail, kept HOURLY_KEPT_MS.
 * An hour lives in exactly one of them. A report adds to one record (one small write, none when
 * no counter moved); the first write of a new hour also moves that satellite's hours past the
 * detail window into hourly totals and drops hourly totals past retention — range reads under the
 * satellite's own key, bounded by the retention, never a table scan. hourStart is in epoch seconds.
 */

/** The metrics kept, in storage order. */
export const SERIES_METRICS = ['bytesFromUpstream', 'bytesServed', 'bytesSavedByCache', 'bytesFromPeers', 'bytesToPeers'] as const;
export type SeriesMetric = (typeof SERIES_METRICS)[number];
export const METRIC_COUNT = SERIES_METRICS.length;

export const BUCKET_MS = 5 * 60_000;
export const HOUR_MS = 3_600_000;
export const BUCKETS_PER_HOUR = HOUR_MS / BUCKET_MS;
/** Five-minute detail kept this long, then summed into hourly totals. */
export const DETAIL_KEPT_MS = 48 * HOUR_MS;
/** Hourly totals kept this long. */
export const HOURLY_KEPT_MS = 30 * 24 * HOUR_MS;

type SeriesKey = [string, number];

export const hourOf = (ms: number): number => Math.floor(ms / HOUR_MS) * 3600;

/** Inside a write transaction: adds one report's deltas to the bucket holding `atMs`. */
export function addToSeries(db: GcDb, id: string, atMs: number, nowMs: number, deltas: readonly number[]): void {
  if (deltas.every((d) => d === 0)) return;
  const key: SeriesKey = [id, hourOf(atMs)];
  const before = db.series5m.get(key);
  const next = before ? [...before] : new Array<number>(METRIC_COUNT * BUCKETS_PER_HOUR).fill(0);
  const slot = Math.floor((atMs % HOUR_MS) / BUCKET_MS);
  for (let i = 0; i < METRIC_COUNT; i++) next[slot * METRIC_COUNT + i] = (next[slot * METRIC_COUNT + i] ?? 0) + (deltas[i] ?? 0);
  db.series5m.put(key, next);
  if (!before) rollOver(db, id, nowMs);
}

/** Moves hours past the detail window into hourly totals; drops hourly totals past retention. */
export function rollOver(db: GcDb, id: string, nowMs: number): void {
  const detailFrom = hourOf(nowMs - DETAIL_KEPT_MS);
  for (const { key, value } of db.series5m.getRange({ start: [id, 0], end: [id, detailFrom] })) {
    const hour = (key as SeriesKey)[1];
    db.seriesHourly.put([id, hour], sumHour(value));
    db.series5m.remove(key);
  }
  for (const key of db.seriesHourly.getKeys({ start: [id, 0], end: [id, hourOf(nowMs - HOURLY_KEPT_MS)] })) db.seriesHourly.remove(key);
}

function sumHour(flat: readonly number[]): number[] {
  const out = new Array<number>(METRIC_COUNT).fill(0);
  for (let j = 0; j < flat.length; j++) out[j % METRIC_COUNT] = (out[j % METRIC_COUNT] ?? 0) + (flat[j] ?? 0);
  return out;
}

/** Inside a write transaction: forgets a satellite's series (it was deleted). */
export function removeSeries(db: GcDb, id: string): void {
  for (const key of db.series5m.getKeys({ start: [id, 0], end: [id, Number.MAX_SAFE_INTEGER] })) db.series5m.remove(key);
  for (const key of db.seriesHourly.getKeys({ start: [id, 0], end: [id, Number.MAX_SAFE_INTEGER] })) db.seriesHourly.remove(key);
}

/** Five-minute buckets [fromMs, toMs): bucket start (epoch ms) -> per-metric totals. */
export function readDetail(db: GcDb, id: string, fromMs: number, toMs: number): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const { key, value } of db.series5m.getRange({ start: [id, hourOf(fromMs)], end: [id, hourOf(toMs) + 1] })) {
    const hourMs = (key as SeriesKey)[1] * 1000;
    for (let slot = 0; slot < BUCKETS_PER_HOUR; slot++) {
      const t = hourMs + slot * BUCKET_MS;
      if (t < fromMs || t >= toMs) continue;
      const values = value.slice(slot * METRIC_COUNT, (slot + 1) * METRIC_COUNT);
      if (values.some((v) => v !== 0)) out.set(t, values);
    }
  }
  return out;
}

/** Hourly totals [fromMs, toMs), from the hourly table and the detail not yet moved there. */
export function readHourly(db: GcDb, id: string, fromMs: number, toMs: number): Map<number, number[]> {
  const out = new Map<number, number[]>();
  const range = { start: [id, hourOf(fromMs)] as SeriesKey, end: [id, hourOf(toMs - 1) + 1] as SeriesKey };
  for (const { key, value } of db.seriesHourly.getRange(range)) out.set((key as SeriesKey)[1] * 1000, value);
  for (const { key, value } of db.series5m.getRange(range)) {
    const t = (key as SeriesKey)[1] * 1000;
    const sum = sumHour(value);
    const had = out.get(t);
    out.set(t, had ? had.map((v, i) => v + (sum[i] ?? 0)) : sum);
  }
  return out;
}

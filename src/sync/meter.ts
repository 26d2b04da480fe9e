import type { SyncState } from '../store/index.ts';

/** Where the meter's totals live (the store's sync-meter records). */
export type MeterRecords = Pick<SyncState, 'metered' | 'addMetered'>;

export type Period = 'hour' | 'day' | 'month';
const PERIODS: readonly Period[] = ['hour', 'day', 'month'];
const HOUR_MS = 3_600_000;

export interface DataCaps {
  hourBytes?: number;
  dayBytes?: number;
  monthBytes?: number;
}

export interface CapReached {
  period: Period;
  limit: number;
  used: number;
  /** When the period rolls over and downloads may resume. */
  resetsAt: Date;
}

/** UTC period keys: "2026-11-25T04", "2026-11-25", "2026-11". */
export function periodKey(period: Period, at: Date): string {
  const iso = at.toISOString();
  return period === 'hour' ? iso.slice(0, 13) : period === 'day' ? iso.slice(0, 10) : iso.slice(0, 7);
}

function periodEnd(period: Period, at: Date): Date {
  const d = new Date(at);
  if (period === 'hour') d.setUTCMinutes(60, 0, 0);
  else if (period === 'day') d.setUTCHours(24, 0, 0, 0);
  else d.setUTCMonth(d.getUTCMonth() + 1, 1), d.setUTCHours(0, 0, 0, 0);
  return d;
}

/**
 * Bytes read from the upstream per hour, day and month (UTC), persisted so a metered link's
 * budget survives restarts. Counting is in memory and flushed at most once a second.
 */
export class Meter {
  readonly #db: MeterRecords;
  readonly #caps: DataCaps;
  readonly #now: () => Date;
  readonly #pending = new Map<string, number>();
  #flushTimer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  /** The pending keys of the UTC hour [#keysFrom, #keysUntil): add() runs per body chunk. */
  #keys: string[] = [];
  #keysFrom = 0;
  #keysUntil = -1;

  constructor(db: MeterRecords, caps: DataCaps = {}, now: () => Date = () => new Date()) {
    this.#db = db;
    this.#caps = caps;
    this.#now = now;
  }

  add(bytes: number): void {
    if (bytes <= 0) return;
    for (const key of this.#keysAt(this.#now())) this.#pending.set(key, (this.#pending.get(key) ?? 0) + bytes);
    this.#flushTimer ??= setTimeout(() => {
      this.#flushTimer = undefined;
      void this.flush();
    }, 1000);
  }

  #keysAt(at: Date): string[] {
    const t = at.getTime();
    if (t < this.#keysFrom || t >= this.#keysUntil) {
      // Hour, day and month keys all hold until the next UTC hour starts.
      this.#keys = PERIODS.map((p) => `${p}\u0000${periodKey(p, at)}`);
      this.#keysFrom = t - (((t % HOUR_MS) + HOUR_MS) % HOUR_MS);
      this.#keysUntil = this.#keysFrom + HOUR_MS;
    }
    return this.#keys;
  }

  used(period: Period, at: Date = this.#now()): number {
    const key = periodKey(period, at);
    return (this.#db.metered(period, key) ?? 0) + (this.#pending.get(`${period}\u0000${key}`) ?? 0);
  }

  usage(): Record<Period, { period: string; bytes: number }> {
    const at = this.#now();
    const out = {} as Record<Period, { period: string; bytes: number }>;
    for (const p of PERIODS) out[p] = { period: periodKey(p, at), bytes: this.used(p, at) };
    return out;
  }

  /** The first cap that is reached now, if any. */
  capReached(): CapReached | undefined {
    const at = this.#now();
    const limits: Record<Period, number | undefined> = {
      hour: this.#caps.hourBytes,
      day: this.#caps.dayBytes,
      month: this.#caps.monthBytes,
    };
    for (const p of PERIODS) {
      const limit = limits[p];
      if (limit === undefined) continue;
      const used = this.used(p, at);
      if (used >= limit) return { period: p, limit, used, resetsAt: periodEnd(p, at) };
    }
    return undefined;
  }

  flush(): Promise<void> {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    const batch = [...this.#pending];
    this.#pending.clear();
    if (batch.length === 0) return this.#flushing;
    this.#flushing = this.#flushing.then(() =>
      this.#db.addMetered(
        batch.map(([k, bytes]) => {
          const [p, key] = k.split('\u0000') as [string, string];
          return [p, key, bytes];
        }),
      ),
    );
    return this.#flushing;
  }
}

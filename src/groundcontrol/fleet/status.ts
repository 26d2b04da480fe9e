import type { DiskReport, DownloadReport, ProcessReport, ProxyReport } from '../../protocol/index.ts';
import { under } from '../db/db.ts';
import { groupNamesOf, isInState, readCounts, satellitesOfGroup, type FleetCounts, type SatelliteState } from '../db/indexes.ts';
import type { ErrorNote, SatelliteRecord } from '../db/records.ts';
import type { FleetContext } from './context.ts';
import { REJECTED_KEY, emptyStatus, type RejectedSummary } from './reports.ts';

export interface SatelliteStatus {
  id: string;
  name: string;
  site: string | null;
  registered: boolean;
  /** null until the satellite said anything */
  online: boolean | null;
  /** When the last presence message arrived. */
  presenceAt: string | null;
  lastSeenAt: string | null;
  /** Newest generation published to it. */
  desiredGeneration: number | null;
  /** Newest generation it received (state.desiredGeneration). */
  acknowledgedGeneration: number | null;
  /** Newest generation it fully applied. */
  appliedGeneration: number | null;
  /** true when it applied the newest generation published */
  inSync: boolean;
  state: {
    seq: number;
    at: string;
    version: string;
    images: { ok: number; pending: number; failed: number };
    disk: DiskReport;
    lastSync: unknown;
    upstream: unknown;
    /** Downloads in progress (newer satellites, only while images are pending). */
    download?: DownloadReport;
    /** RSS, uptime, architecture and board (newer satellites). */
    process?: ProcessReport;
    /** Pull-through cache hits / (hits + misses) since the satellite started; null without proxy or requests. */
    cacheHitRatio: number | null;
  } | null;
  /** MQTT messages from it that were rejected (malformed, oversized): not image failures. */
  errors: { count: number; last: ErrorNote | null };
  /** Images its last state report lists as failed (at most MAX_FAILURES), with the reason. */
  failures: ImageFailure[];
  /** Groups it gets (directly or through its site). */
  groups: string[];
  events: { count: number; last: { at: string; level: string; code: string; message: string } | null };
}

export interface ImageFailure {
  image: string;
  code: string | null;
  reason: string | null;
}

/** Failed images listed per satellite row; the satellite page has them all. */
export const MAX_FAILURES = 5;

export interface FleetStatus {
  at: string;
  broker: { connected: boolean; url: string };
  /** Fleet-wide, whatever the filter: kept by every write, not counted per call. */
  counts: FleetCounts;
  /** Messages rejected fleet-wide (also those naming no known satellite). */
  rejected: RejectedSummary;
  /** This page of the satellites that match the filter, in id order. */
  satellites: SatelliteStatus[];
  page: StatusPage;
}

export interface StatusPage {
  limit: number;
  /** Sorted listings: the first row's position and the next page's `offset` (null on the last). */
  offset?: number;
  nextOffset?: number | null;
  /** Pass as `after` for the next page; null on the last page. */
  next: string | null;
  /** How many match the filter, when the counters know it (no filter, or state alone); else null. */
  total: number | null;
}

export interface StatusQuery {
  site?: string | undefined;
  group?: string | undefined;
  state?: SatelliteState | undefined;
  /** Page size (default DEFAULT_PAGE, at most MAX_PAGE). */
  limit?: number | undefined;
  /** Satellite id the previous page ended with (id order only). */
  after?: string | undefined;
  /** Order rows by this column across every matching satellite (default: id, paged by `after`). */
  sort?: SortKey | undefined;
  /** Descending order. */
  desc?: boolean | undefined;
  /** Rows to skip in a sorted listing (sorted pages are numbered, not cursors). */
  offset?: number | undefined;
}

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

/**
 * Candidate ids in id order past `after`, from the narrowest index the filter names: the site's
 * members, the group's satellites, the state's satellites, else every satellite. The other filters
 * are checked per candidate with point reads, so a page costs O(page) reads for a single filter
 * and at most O(site or group size) for combined ones — never a whole table.
 */
function* candidates(ctx: FleetContext, q: StatusQuery): Generator<string> {
  const { db } = ctx;
  if (q.site !== undefined) {
    for (const k of db.siteSatellites.getKeys(under(q.site, q.after))) yield k[1];
  } else if (q.group !== undefined) {
    const ids = satellitesOfGroup(db, q.group).sort();
    for (const id of ids) if (q.after === undefined || id > q.after) yield id;
  } else if (q.state !== undefined) {
    for (const k of db.satelliteStates.getKeys(under(q.state, q.after))) yield k[1];
  } else {
    const range = q.after === undefined ? {} : { start: `${q.after}\u0000` };
    for (const id of db.satellites.getKeys(range)) yield id;
  }
}

function matches(ctx: FleetContext, sat: SatelliteRecord, q: StatusQuery): boolean {
  if (q.site !== undefined && sat.site !== q.site) return false;
  if (q.state !== undefined && !isInState(ctx.db, sat.id, q.state)) return false;
  if (q.group !== undefined && !groupNamesOf(ctx.db, sat).includes(q.group)) return false;
  return true;
}

/** One page of the satellites matching a filter, plus the fleet-wide counters. */
export function pageSatellites(ctx: FleetContext, q: StatusQuery): { satellites: SatelliteRecord[]; page: StatusPage } {
  const limit = Math.min(Math.max(1, q.limit ?? DEFAULT_PAGE), MAX_PAGE);
  if ((q.sort !== undefined && q.sort !== 'id') || q.desc || q.offset !== undefined) return sortedPage(ctx, q, limit);
  const out: SatelliteRecord[] = [];
  let more = false;
  for (const id of candidates(ctx, q)) {
    const sat = ctx.db.satellites.get(id);
    if (!sat || !matches(ctx, sat, q)) continue;
    if (out.length === limit) {
      more = true;
      break;
    }
    out.push(sat);
  }
  const counts = readCounts(ctx.db);
  const total =
    q.site === undefined && q.group === undefined ? (q.state === undefined ? counts.satellites : counts[STATE_COUNT[q.state]]) : null;
  return { satellites: out, page: { limit, next: more ? (out.at(-1)?.id ?? null) : null, total } };
}

/**
 * A page of the matching satellites in the order of one column. Unlike id order this reads every
 * matching satellite (point reads of its record, status and generations: ~3 reads each, about
 * 30 ms at 10,000), sorts, and slices at `offset`; ties break by id so pages never overlap.
 */
function sortedPage(ctx: FleetContext, q: StatusQuery, limit: number): { satellites: SatelliteRecord[]; page: StatusPage } {
  const key = SORT_KEYS[q.sort ?? 'id'];
  const rows: Array<{ sat: SatelliteRecord; k: string | number }> = [];
  for (const id of candidates(ctx, { ...q, after: undefined })) {
    const sat = ctx.db.satellites.get(id);
    if (!sat || !matches(ctx, sat, q)) continue;
    rows.push({ sat, k: key(ctx, sat) });
  }
  const dir = q.desc ? -1 : 1;
  rows.sort((a, b) => (a.k < b.k ? -dir : a.k > b.k ? dir : a.sat.id < b.sat.id ? -1 : a.sat.id > b.sat.id ? 1 : 0));
  const offset = Math.max(0, q.offset ?? 0);
  const slice = rows.slice(offset, offset + limit).map((r) => r.sat);
  const nextOffset = offset + limit < rows.length ? offset + limit : null;
  return { satellites: slice, page: { limit, next: null, total: rows.length, offset, nextOffset } };
}

/** Sort keys of the status table's columns; a missing value sorts first ascending (-1 or ''). */
const SORT_KEYS = {
  id: (_ctx: FleetContext, s: SatelliteRecord) => s.id,
  name: (_ctx: FleetContext, s: SatelliteRecord) => s.name,
  site: (_ctx: FleetContext, s: SatelliteRecord) => s.site ?? '',
  groups: (ctx: FleetContext, s: SatelliteRecord) => groupNamesOf(ctx.db, s).join(','),
  presence: (ctx: FleetContext, s: SatelliteRecord) => {
    const online = ctx.db.status.get(s.id)?.presence?.online;
    return online === undefined ? 0 : online ? 2 : 1;
  },
  since: (ctx: FleetContext, s: SatelliteRecord) => ctx.db.status.get(s.id)?.presence?.receivedAt ?? '',
  desired: (ctx: FleetContext, s: SatelliteRecord) => ctx.db.generations.get(s.id)?.desired ?? -1,
  applied: (ctx: FleetContext, s: SatelliteRecord) => ctx.db.generations.get(s.id)?.applied ?? -1,
  images: (ctx: FleetContext, s: SatelliteRecord) => {
    const c = ctx.db.status.get(s.id)?.state?.imageCounts;
    return c ? c.failed * 1e8 + c.pending * 1e4 + c.ok : -1;
  },
  remaining: (ctx: FleetContext, s: SatelliteRecord) => ctx.db.status.get(s.id)?.state?.download?.bytesRemaining ?? -1,
  disk: (ctx: FleetContext, s: SatelliteRecord) => ctx.db.status.get(s.id)?.state?.disk.bytes ?? -1,
  free: (ctx: FleetContext, s: SatelliteRecord) => ctx.db.status.get(s.id)?.state?.disk.freeBytes ?? -1,
  hits: (ctx: FleetContext, s: SatelliteRecord) => hitRatio(ctx.db.status.get(s.id)?.state?.proxy) ?? -1,
  version: (ctx: FleetContext, s: SatelliteRecord) => ctx.db.status.get(s.id)?.state?.version ?? '',
} as const;

export type SortKey = keyof typeof SORT_KEYS;
export const SORT_KEY_NAMES = Object.keys(SORT_KEYS) as SortKey[];

const STATE_COUNT: Record<SatelliteState, keyof FleetCounts> = { online: 'online', offline: 'offline', unknown: 'unknown', 'in-sync': 'inSync', 'out-of-sync': 'outOfSync', failed: 'failed' };

function statusRow(ctx: FleetContext, sat: SatelliteRecord): SatelliteStatus {
  const s = ctx.db.status.get(sat.id) ?? emptyStatus();
  const g = ctx.db.generations.get(sat.id);
  const desired = g?.desired ?? null;
  const applied = s.state?.appliedGeneration ?? null;
  return {
    id: sat.id,
    name: sat.name,
    site: sat.site,
    registered: sat.registeredAt !== null,
    online: s.presence?.online ?? null,
    presenceAt: s.presence?.receivedAt ?? null,
    lastSeenAt: s.lastSeenAt,
    desiredGeneration: desired,
    acknowledgedGeneration: s.state?.desiredGeneration ?? null,
    appliedGeneration: applied,
    inSync: desired !== null && applied === desired,
    state: s.state
      ? {
          seq: s.state.seq,
          at: s.state.at,
          version: s.state.version,
          images: s.state.imageCounts,
          disk: s.state.disk,
          lastSync: s.state.lastSync,
          upstream: s.state.upstream,
          ...(s.state.download ? { download: s.state.download } : {}),
          ...(s.state.process ? { process: s.state.process } : {}),
          cacheHitRatio: hitRatio(s.state.proxy),
        }
      : null,
    errors: s.errors,
    failures: (s.state?.images ?? [])
      .filter((i) => i.status === 'failed')
      .slice(0, MAX_FAILURES)
      .map((i) => ({ image: `${i.repository}:${i.reference}`, code: i.code ?? null, reason: i.reason ?? null })),
    groups: groupNamesOf(ctx.db, sat),
    events: { count: s.events.count, last: s.events.last.at(-1) ?? null },
  };
}

/** Hits over requests of a satellite's pull-through cache, 3 decimals; null when there is none yet. */
export function hitRatio(p: ProxyReport | undefined): number | null {
  if (!p || p.hits + p.misses === 0) return null;
  return Math.round((p.hits / (p.hits + p.misses)) * 1000) / 1000;
}

/** The fleet as Ground Control knows it: counters, the rejected-message tally, one page of rows. */
export function fleetStatus(ctx: FleetContext, q: StatusQuery = {}): FleetStatus {
  const { satellites, page } = pageSatellites(ctx, q);
  return {
    at: ctx.now().toISOString(),
    broker: { connected: ctx.publisher.connected, url: ctx.publicMqttUrl },
    counts: readCounts(ctx.db),
    rejected: (ctx.db.meta.get(REJECTED_KEY) as RejectedSummary | undefined) ?? { count: 0, last: null },
    satellites: satellites.map((sat) => statusRow(ctx, sat)),
    page,
  };
}

import type { GcDb } from '../db/db.ts';
import type { EventRecord, StatusRecord } from '../db/records.ts';
import { durable } from '../db/db.ts';

/**
 * The event and audit log: who changed what through the API, and each satellite's transitions
 * (online/offline, image failed/recovered). One LMDB table keyed by a sequence number; only the
 * newest `kept` lines stay, trimmed in the transaction that appends.
 */

export type NewEvent = Omit<EventRecord, 'seq' | 'at' | 'actor' | 'satelliteId' | 'status'> & Partial<Pick<EventRecord, 'actor' | 'satelliteId' | 'status'>>;

export const DEFAULT_EVENTS_PAGE = 100;
export const MAX_EVENTS_PAGE = 1000;

/** Appends one line; call inside a write transaction. */
export function appendEvent(db: GcDb, kept: number, at: string, e: NewEvent): void {
  let last = 0;
  for (const k of db.events.getKeys({ reverse: true, limit: 1 })) last = k;
  const seq = last + 1;
  db.events.put(seq, { seq, at, kind: e.kind, action: e.action, actor: e.actor ?? null, satelliteId: e.satelliteId ?? null, status: e.status ?? null, message: e.message.slice(0, 1000) });
  // Normally removes exactly one line; more after `kept` was lowered.
  for (const k of db.events.getKeys({ end: seq - kept + 1 })) db.events.remove(k);
}

/** Appends one line in its own durable transaction (audit of an API request). */
export async function recordEvent(db: GcDb, kept: number, at: string, e: NewEvent): Promise<void> {
  await durable(db, () => appendEvent(db, kept, at, e));
}

export interface EventsQuery {
  limit?: number | undefined;
  /** Lines older than this sequence number (the previous page's `next`). */
  before?: number | undefined;
  /** Lines newer than this sequence number, oldest first (following the log). */
  after?: number | undefined;
  satelliteId?: string | undefined;
  kind?: EventRecord['kind'] | undefined;
  /** Event types (eventType): exact names or `prefix.*`. */
  types?: readonly string[] | undefined;
  /** Lines at or after this ISO time. */
  since?: string | undefined;
}

export interface EventsPage {
  limit: number;
  /** `before` for the next older page (null at the end); with `after`: the `after` to poll with next. */
  next: number | null;
  /** The newest line's sequence number (0 for an empty log): where a follower starts. */
  newest: number;
}

/**
 * The type of a line, also the suffix of its CloudEvents type (io.goharbor.satellite.<type>):
 * "audit" for a change made through the API; a transition's action without a leading
 * "satellite." ("online", "offline", "image.failed", "image.recovered").
 */
export function eventType(e: Pick<EventRecord, 'kind' | 'action'>): string {
  return e.kind === 'audit' ? 'audit' : e.action.replace(/^satellite\./, '');
}

/** True when `type` is one of `patterns` (exact, or `prefix.*` for every type under prefix). */
export function typeMatches(type: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.endsWith('.*') ? type.startsWith(p.slice(0, -1)) : p === '*' || p === type));
}

export function newestEventSeq(db: GcDb): number {
  for (const k of db.events.getKeys({ reverse: true, limit: 1 })) return k;
  return 0;
}

/**
 * One page: newest first, or with `after` oldest first. A filter reads through the log until the
 * page is full, bounded by the table's size (`kept` lines).
 */
export function listEvents(db: GcDb, q: EventsQuery): { events: EventRecord[]; page: EventsPage } {
  const limit = Math.min(Math.max(1, q.limit ?? DEFAULT_EVENTS_PAGE), MAX_EVENTS_PAGE);
  const newest = newestEventSeq(db);
  const wanted = (value: EventRecord) =>
    (q.satelliteId === undefined || value.satelliteId === q.satelliteId) && (q.kind === undefined || value.kind === q.kind) && (q.types === undefined || typeMatches(eventType(value), q.types));
  const out: EventRecord[] = [];
  if (q.after !== undefined) {
    let cursor = q.after;
    for (const { value } of db.events.getRange({ start: q.after + 1 })) {
      if ((q.since === undefined || value.at >= q.since) && wanted(value)) {
        if (out.length === limit) break;
        out.push(value);
      }
      cursor = value.seq;
    }
    return { events: out, page: { limit, next: cursor, newest } };
  }
  let more = false;
  const range = q.before === undefined ? { reverse: true } : { reverse: true, start: q.before - 1 };
  for (const { value } of db.events.getRange(range)) {
    if (q.since !== undefined && value.at < q.since) break;
    if (!wanted(value)) continue;
    if (out.length === limit) {
      more = true;
      break;
    }
    out.push(value);
  }
  return { events: out, page: { limit, next: more ? (out.at(-1)?.seq ?? null) : null, newest } };
}

const imageKey = (i: { repository: string; reference: string }) => `${i.repository}:${i.reference}`;

/**
 * The transitions between two stored statuses of a satellite, as log lines: presence changed,
 * images that started failing (with the reason) or recovered.
 */
export function statusTransitions(id: string, before: StatusRecord | undefined, next: StatusRecord): NewEvent[] {
  const out: NewEvent[] = [];
  const was = before?.presence?.online;
  const is = next.presence?.online;
  if (is !== undefined && is !== was) {
    out.push({ kind: 'satellite', action: is ? 'satellite.online' : 'satellite.offline', satelliteId: id, message: `${id} went ${is ? 'online' : 'offline'}` });
  }
  if (next.state && next.state !== before?.state) {
    const failedBefore = new Map((before?.state?.images ?? []).filter((i) => i.status === 'failed').map((i) => [imageKey(i), i]));
    for (const img of next.state.images) {
      const key = imageKey(img);
      if (img.status === 'failed' && !failedBefore.has(key)) {
        out.push({ kind: 'satellite', action: 'image.failed', satelliteId: id, message: `${key} failed${img.code ? ` (${img.code})` : ''}${img.reason ? `: ${img.reason}` : ''}` });
      } else if (img.status === 'ok' && failedBefore.has(key)) {
        out.push({ kind: 'satellite', action: 'image.recovered', satelliteId: id, message: `${key} recovered` });
      }
    }
  }
  return out;
}

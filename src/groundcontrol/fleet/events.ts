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
  satelliteId?: string | undefined;
  kind?: EventRecord['kind'] | undefined;
}

/**
 * Newest first, one page. A filter reads through the log until the page is full, bounded by the
 * table's size (`kept` lines).
 */
export function listEvents(db: GcDb, q: EventsQuery): { events: EventRecord[]; page: { limit: number; next: number | null } } {
  const limit = Math.min(Math.max(1, q.limit ?? DEFAULT_EVENTS_PAGE), MAX_EVENTS_PAGE);
  const out: EventRecord[] = [];
  let more = false;
  const range = q.before === undefined ? { reverse: true } : { reverse: true, start: q.before - 1 };
  for (const { value } of db.events.getRange(range)) {
    if (q.satelliteId !== undefined && value.satelliteId !== q.satelliteId) continue;
    if (q.kind !== undefined && value.kind !== q.kind) continue;
    if (out.length === limit) {
      more = true;
      break;
    }
    out.push(value);
  }
  return { events: out, page: { limit, next: more ? (out.at(-1)?.seq ?? null) : null } };
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

import type { GcDb } from '../db/db.ts';
import type { EventRecord, WebhookCursorRecord } from '../db/records.ts';
import { eventType, newestEventSeq, typeMatches } from '../fleet/events.ts';
import { sha256Hex } from '../secrets.ts';

/**
 * A webhook's queue is the event log itself: the lines after the webhook's cursor that match its
 * types. Recording an event therefore costs the webhooks nothing (no write on the report path),
 * the queue survives restarts with the log, and it is ordered by construction. The cursor is one
 * small LMDB record per webhook (`webhook-cursors`), moved after each delivery.
 */

/** The key of a webhook's cursor: its URL's SHA-256 (first 16 hex), so the URL itself is not a key. */
export function webhookId(url: string): string {
  return sha256Hex(url).slice(0, 16);
}

/** The cursor of a webhook, created at the log's newest line: a new webhook gets no history. */
export async function openCursor(db: GcDb, id: string, url: string): Promise<WebhookCursorRecord> {
  const found = db.webhookCursors.get(id);
  if (found) return found;
  const cursor: WebhookCursorRecord = { url, seq: newestEventSeq(db), attempts: 0, firstAttemptAt: null };
  await db.webhookCursors.put(id, cursor);
  return cursor;
}

export async function saveCursor(db: GcDb, id: string, cursor: WebhookCursorRecord): Promise<void> {
  await db.webhookCursors.put(id, cursor);
}

const matcher = (types: readonly string[] | undefined) => (e: EventRecord) => types === undefined || typeMatches(eventType(e), types);

export interface NextLine {
  /** The oldest queued line, if any. */
  event: EventRecord | undefined;
  /** Where the cursor may move without delivering anything (lines that do not match, dropped ones). */
  skipTo: number;
  /** Queued lines dropped: beyond maxQueued, or trimmed from the log (events.kept) before delivery. */
  dropped: number;
}

/** The next line to deliver after `seq`; drops the oldest queued lines past `maxQueued`. */
export function nextLine(db: GcDb, seq: number, types: readonly string[] | undefined, maxQueued: number): NextLine {
  const wanted = matcher(types);
  let dropped = 0;
  let first = seq + 1;
  for (const k of db.events.getKeys({ limit: 1 })) first = k;
  if (first > seq + 1) {
    // Trimmed by the log's retention before we got to them; their types are unknown: all counted.
    dropped += first - seq - 1;
    seq = first - 1;
  }
  const newest = newestEventSeq(db);
  // A cursor past the log's end (the database was restored from an older copy): start at its end.
  if (seq > newest) return { event: undefined, skipTo: newest, dropped };
  if (newest - seq > maxQueued) {
    // Possibly over the bound: count the queued lines from the newest back.
    let queued = 0;
    let cut = seq;
    for (const { key, value } of db.events.getRange({ reverse: true, end: seq })) {
      if (!wanted(value)) continue;
      queued++;
      if (queued === maxQueued + 1) cut = key;
    }
    if (cut > seq) {
      dropped += queued - maxQueued;
      seq = cut;
    }
  }
  let skipTo = seq;
  for (const { value } of db.events.getRange({ start: seq + 1 })) {
    if (wanted(value)) return { event: value, skipTo, dropped };
    skipTo = value.seq;
  }
  return { event: undefined, skipTo, dropped };
}

/** Lines queued for a webhook (scanned, at most `cap` counted). */
export function queueDepth(db: GcDb, seq: number, types: readonly string[] | undefined, cap: number): number {
  const wanted = matcher(types);
  let n = 0;
  for (const { value } of db.events.getRange({ start: seq + 1 })) {
    if (wanted(value) && ++n >= cap) break;
  }
  return n;
}

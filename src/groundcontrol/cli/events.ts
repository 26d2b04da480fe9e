import { setTimeout as sleep } from 'node:timers/promises';
import type { EventRecord } from '../db/records.ts';
import { eventType, type EventsPage } from '../fleet/events.ts';
import { ApiCallError, type ApiClient } from './client.ts';
import { formatTable } from './table.ts';

/** How often `events --follow` asks for lines after the last one it printed. */
export const FOLLOW_INTERVAL_MS = 2000;

export interface EventsOptions {
  json: boolean;
  follow?: boolean | undefined;
  satellite?: string | undefined;
  type?: string | undefined;
  since?: string | undefined;
  limit?: string | undefined;
  /** Ends --follow (Ctrl-C): the command returns 0. */
  signal?: AbortSignal | undefined;
  /** Poll interval of --follow (tests). */
  intervalMs?: number | undefined;
}

type EventsDoc = { events: EventRecord[]; page: EventsPage };

/** Thrown for a bad --since. */
export class EventsUsageError extends Error {}

/** "30s", "10m", "2h", "7d" before now, or an ISO time, as an ISO time. */
export function sinceTime(text: string, now = Date.now()): string {
  const m = /^([0-9]+)([smhd])$/.exec(text);
  if (m) return new Date(now - Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'] * 1000).toISOString();
  const t = Date.parse(text);
  if (Number.isNaN(t) || !/^[0-9]{4}-/.test(text)) throw new EventsUsageError(`--since must be a duration (30s, 10m, 2h, 7d) or an ISO time, not ${text}`);
  return new Date(t).toISOString();
}

function row(e: EventRecord): string[] {
  return [e.at.replace(/\.[0-9]+Z$/, 'Z'), eventType(e), e.satelliteId ?? '-', e.actor ?? '-', e.message];
}

const HEADERS = ['TIME', 'TYPE', 'SATELLITE', 'ACTOR', 'MESSAGE'];
/** Fixed widths for followed lines (a table cannot re-align what is already printed). */
const WIDTHS = [20, 16, 24, 28];

function followLine(e: EventRecord): string {
  return row(e).map((c, i) => (i < WIDTHS.length ? c.padEnd(WIDTHS[i] ?? 0) : c)).join('  ');
}

/**
 * `groundcontrol events`: one page of the event and audit log, oldest of the page first; with
 * --follow, then every new line as it comes (polling the API's `after` cursor), until the signal.
 */
export async function runEvents(api: ApiClient, opts: EventsOptions, out: (text: string) => void, err: (text: string) => void): Promise<number> {
  const q = new URLSearchParams();
  if (opts.satellite !== undefined) q.set('satellite', opts.satellite);
  if (opts.type !== undefined) q.set('type', opts.type);
  if (opts.since !== undefined) q.set('since', sinceTime(opts.since));
  q.set('limit', opts.limit ?? (opts.follow ? '10' : '100'));
  const first = await api.call<EventsDoc>('GET', `/api/v1/events?${q}`);
  const backlog = [...first.events].reverse();
  if (!opts.follow) {
    out(opts.json ? JSON.stringify(first, null, 2) : backlog.length === 0 ? 'no events' : formatTable(HEADERS, backlog.map(row)));
    return 0;
  }
  const print = (e: EventRecord) => out(opts.json ? JSON.stringify(e) : followLine(e));
  if (!opts.json) out(HEADERS.map((h, i) => (i < WIDTHS.length ? h.padEnd(WIDTHS[i] ?? 0) : h)).join('  '));
  for (const e of backlog) print(e);
  let cursor = first.page.newest;
  q.set('limit', '1000');
  let lost = false;
  const signal = opts.signal;
  while (!signal?.aborted) {
    q.set('after', String(cursor));
    let page: EventsDoc | undefined;
    try {
      page = await api.call<EventsDoc>('GET', `/api/v1/events?${q}`, undefined, signal);
      if (lost) err('Ground Control is back');
      lost = false;
    } catch (e) {
      if (signal?.aborted) break;
      if (!(e instanceof ApiCallError) || e.code !== 'CONNECTION_FAILED') throw e;
      if (!lost) err(`${e.message}; retrying`);
      lost = true;
    }
    if (page) {
      for (const e of page.events) print(e);
      // A full page: there is more right now.
      if (page.page.next !== null) cursor = page.page.next;
      if (page.events.length === page.page.limit) continue;
    }
    try {
      await sleep(opts.intervalMs ?? FOLLOW_INTERVAL_MS, undefined, signal ? { signal } : {});
    } catch {
      break;
    }
  }
  return 0;
}

import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { LiveConfig } from '../config.ts';
import type { GcDb } from '../db/db.ts';
import { readCounts } from '../db/indexes.ts';
import { gcError } from '../errors.ts';
import type { ChangeSink } from '../fleet/context.ts';
import { sha256Hex } from '../secrets.ts';
import { checkSameOrigin } from './auth.ts';
import type { ApiHandler, ApiRequest } from './context.ts';
import { bearerToken } from './http.ts';

/** Changed ids listed in one message at most; past it the message says `more` (refetch what you show). */
export const MAX_IDS_PER_MESSAGE = 1000;
/** A change waits this long for others to join its message (the first after a quiet second). */
const COALESCE_MS = 50;

/**
 * One `changes` message: which satellites' status changed since the previous message (a page
 * refetches its rows only when it shows one of them), the fleet-wide counts, and `config` when
 * something was changed through the API (groups, assignments, satellites).
 */
export interface ChangesMessage {
  at: string;
  ids: string[];
  more: boolean;
  config: boolean;
  counts: ReturnType<typeof readCounts>;
}

interface Connection {
  res: ServerResponse;
  /** False once the session ended or the admin token was removed. */
  valid: () => boolean;
  cookie: string | undefined;
  expiry: NodeJS.Timeout | undefined;
}

/**
 * The live feed of GET /api/v1/live (Server-Sent Events). Fleet changes (reports, presence,
 * events, command results, API changes) are collected into one set and sent to every open stream
 * at most once per `intervalMs`, so a satellite costs at most one mention per second however often
 * it reports, and a message carries ids, not rows. Bounded: at most `maxConnections` streams; a
 * stream whose unsent bytes pass `maxBufferedBytes` (a client that stopped reading) is cut. A
 * comment line every `heartbeatSeconds` keeps proxies from closing an idle stream and rechecks
 * that the session or admin token still exists; logout and session expiry end the stream.
 */
export class LiveHub implements ChangeSink {
  readonly #db: GcDb;
  readonly #log: Logger;
  readonly #config: LiveConfig;
  readonly #conns = new Set<Connection>();
  #ids = new Set<string>();
  #more = false;
  #configChanged = false;
  #flushTimer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #lastFlush = 0;
  #dropped = 0;
  #closed = false;

  constructor(opts: { db: GcDb; log: Logger; config: LiveConfig }) {
    this.#db = opts.db;
    this.#log = opts.log;
    this.#config = opts.config;
  }

  get connections(): number {
    return this.#conns.size;
  }

  /** Streams cut because their client stopped reading. */
  get dropped(): number {
    return this.#dropped;
  }

  satellitesChanged(ids: Iterable<string>): void {
    if (this.#conns.size === 0) return;
    for (const id of ids) {
      if (this.#ids.size >= MAX_IDS_PER_MESSAGE) {
        this.#more = true;
        break;
      }
      this.#ids.add(id);
    }
    this.#schedule();
  }

  /** Something changed through the API: every page refetches what it shows. */
  configChanged(): void {
    if (this.#conns.size === 0) return;
    this.#configChanged = true;
    this.#schedule();
  }

  /** Takes over the response of an authenticated GET /api/v1/live. */
  open(r: ApiRequest): void {
    if (this.#closed) throw gcError('UNAVAILABLE', 'Ground Control is shutting down');
    if (this.#conns.size >= this.#config.maxConnections) {
      throw gcError('UNAVAILABLE', `too many live streams open (api.live.maxConnections ${this.#config.maxConnections})`, { detail: { retryAfterSeconds: 10 } });
    }
    const conn: Connection = { res: r.res, valid: validity(r, this.#db), cookie: r.caller?.cookie, expiry: undefined };
    const session = r.caller?.session;
    if (session) conn.expiry = setTimeout(() => this.#end(conn, 'session expired'), Math.max(0, session.expiresAt - Date.now())).unref();
    this.#conns.add(conn);
    r.res.once('close', () => {
      clearTimeout(conn.expiry);
      this.#conns.delete(conn);
      if (this.#conns.size === 0) this.#stopTimers();
    });
    r.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
    });
    r.res.socket?.setNoDelay(true);
    this.#write(conn, `retry: 5000\nevent: hello\ndata: ${JSON.stringify({ counts: readCounts(this.#db), heartbeatSeconds: this.#config.heartbeatSeconds })}\n\n`);
    this.#heartbeat ??= setInterval(() => this.#beat(), this.#config.heartbeatSeconds * 1000).unref();
    r.log.debug({ streams: this.#conns.size }, 'live stream opened');
  }

  /** Logout: the streams opened with this session cookie end now. */
  endSession(cookie: string): void {
    for (const c of this.#conns) if (c.cookie === cookie) this.#end(c, 'logged out');
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#conns) this.#end(c, 'shutting down');
    this.#stopTimers();
  }

  #schedule(): void {
    if (this.#flushTimer) return;
    const delay = Math.max(COALESCE_MS, this.#lastFlush + this.#config.intervalMs - Date.now());
    this.#flushTimer = setTimeout(() => this.#flush(), delay);
  }

  #flush(): void {
    this.#flushTimer = undefined;
    this.#lastFlush = Date.now();
    const msg: ChangesMessage = { at: new Date().toISOString(), ids: [...this.#ids], more: this.#more, config: this.#configChanged, counts: readCounts(this.#db) };
    this.#ids = new Set();
    this.#more = false;
    this.#configChanged = false;
    const text = `event: changes\ndata: ${JSON.stringify(msg)}\n\n`;
    for (const c of this.#conns) this.#write(c, text);
  }

  #beat(): void {
    for (const c of this.#conns) {
      if (!c.valid()) this.#end(c, 'session ended');
      else this.#write(c, ': ping\n\n');
    }
  }

  #write(c: Connection, text: string): void {
    if (c.res.destroyed) return;
    c.res.write(text);
    if (c.res.writableLength > this.#config.maxBufferedBytes) {
      this.#dropped++;
      this.#log.warn({ buffered: c.res.writableLength, limit: this.#config.maxBufferedBytes }, 'live stream dropped: the client does not read');
      c.res.destroy();
    }
  }

  #end(c: Connection, reason: string): void {
    if (c.res.destroyed || c.res.writableEnded) return;
    c.res.end(`event: end\ndata: ${JSON.stringify({ reason })}\n\n`);
  }

  #stopTimers(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#ids = new Set();
    this.#more = false;
    this.#configChanged = false;
  }
}

/** Whether the credentials the stream was opened with still hold (checked at each heartbeat). */
function validity(r: ApiRequest, db: GcDb): () => boolean {
  const session = r.caller?.session;
  const cookie = r.caller?.cookie;
  if (session && cookie) return () => r.sessions?.get(cookie) !== undefined && db.adminTokens.get(session.adminTokenHash) !== undefined;
  const token = bearerToken(r.req);
  const hash = token ? sha256Hex(token) : undefined;
  return () => hash !== undefined && db.adminTokens.get(hash) !== undefined;
}

/**
 * GET /api/v1/live -> text/event-stream: `hello` {counts}, then `changes` (ChangesMessage) at most
 * once a second, `: ping` comments every heartbeatSeconds, `end` {reason} before it closes.
 * Admin token or console session, like every route; a request another site's page made is refused.
 */
export const getLive: ApiHandler = (r) => {
  if (!r.live) throw gcError('NOT_FOUND', 'the live feed is not available');
  checkSameOrigin(r.req);
  r.live.open(r);
  return { status: 200, body: null, streamed: true };
};

import { stat, readFile } from 'node:fs/promises';
import { Agent as HttpAgent, request as httpRequest, type ClientRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { SatelliteError } from '../../lib/errors.ts';
import type { EventsConfig, WebhookDeliveryConfig } from '../config.ts';
import type { GcDb } from '../db/db.ts';
import type { EventRecord, WebhookCursorRecord } from '../db/records.ts';
import { CLOUDEVENTS_CONTENT_TYPE, signatureHeaders, toCloudEvent } from './cloudevent.ts';
import { nextLine, openCursor, queueDepth, saveCursor, webhookId } from './queue.ts';

/** How often an idle webhook looks for new lines in the log (a key read; no write). */
const IDLE_POLL_MS = 500;
/** Bytes of a receiver's answer read at most; the rest is cut off with the connection. */
const MAX_RESPONSE_BYTES = 4096;

/** Outcome counts per webhook, for the metrics. */
export type DeliveryResult = 'delivered' | 'failed' | 'gave_up' | 'dropped';

/** What the metrics read at scrape time. */
export interface WebhookStats {
  webhooks(): Array<{ id: string; origin: string; counts: Record<DeliveryResult, number>; depth: number }>;
}

/**
 * Reads a webhook secret: the first line of a file that group and others cannot read (0600 or
 * 0400), 16 characters at least. Bad files fail the start-up (CONFIG_INVALID, exit 78).
 */
export async function readWebhookSecret(path: string, where: string): Promise<string> {
  let text: string;
  try {
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0) throw new Error(`mode ${(st.mode & 0o777).toString(8)} lets group or others read it (chmod 600)`);
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new SatelliteError('CONFIG_INVALID', `${where}: cannot use ${path}: ${(err as Error).message}`, { cause: err });
  }
  const secret = text.split('\n')[0]?.trim() ?? '';
  if (secret.length < 16) throw new SatelliteError('CONFIG_INVALID', `${where}: the secret in ${path} is shorter than 16 characters`);
  return secret;
}

/** Backoff before attempt `attempts + 1`: doubling from the initial delay, capped, with jitter (half to all of it). */
export function backoffMs(attempts: number, cfg: WebhookDeliveryConfig, random = Math.random): number {
  const full = Math.min(cfg.maxBackoffSeconds * 1000, cfg.initialBackoffMs * 2 ** Math.min(attempts - 1, 30));
  return Math.round(full / 2 + (random() * full) / 2);
}

interface Target {
  id: string;
  url: URL;
  /** scheme://host:port, what logs and metrics name (a path or query may carry a token). */
  origin: string;
  secret: string;
  types: readonly string[] | undefined;
  counts: Record<DeliveryResult, number>;
  cursor: WebhookCursorRecord | undefined;
  agent: HttpAgent;
  inFlight: ClientRequest | undefined;
  /** The last cursor write (not awaited per delivery: LMDB batches them; close() waits for it). */
  saved: Promise<void>;
}

/**
 * Delivers the event log to the configured webhooks as signed CloudEvents: one loop per webhook,
 * one request at a time, in log order; a failure is retried with backoff until maxAttempts or
 * maxAgeSeconds, then given up. Runs beside the report path: it only reads the log.
 */
export class WebhookDeliverer implements WebhookStats {
  readonly #db: GcDb;
  readonly #log: Logger;
  readonly #cfg: WebhookDeliveryConfig;
  readonly #source: string;
  readonly #targets: Target[];
  readonly #stop = new AbortController();
  #loops: Promise<void>[] = [];

  private constructor(db: GcDb, log: Logger, config: EventsConfig, targets: Target[]) {
    this.#db = db;
    this.#log = log;
    this.#cfg = config.delivery;
    this.#source = config.source ?? `urn:groundcontrol:${hostname()}`;
    this.#targets = targets;
  }

  /** Reads every webhook's secret (fails start-up on a bad one); start() begins delivering. */
  static async open(db: GcDb, log: Logger, config: EventsConfig): Promise<WebhookDeliverer> {
    const targets: Target[] = [];
    for (const [i, w] of config.webhooks.entries()) {
      const url = new URL(w.url);
      const secret = await readWebhookSecret(w.secretFile, `events.webhooks[${i}].secretFile`);
      const agent = url.protocol === 'https:' ? new HttpsAgent({ keepAlive: true, maxSockets: 1 }) : new HttpAgent({ keepAlive: true, maxSockets: 1 });
      targets.push({ id: webhookId(w.url), url, origin: url.origin, secret, types: w.types, counts: { delivered: 0, failed: 0, gave_up: 0, dropped: 0 }, cursor: undefined, agent, inFlight: undefined, saved: Promise.resolve() });
    }
    return new WebhookDeliverer(db, log, config, targets);
  }

  async start(): Promise<void> {
    for (const t of this.#targets) {
      t.cursor = await openCursor(this.#db, t.id, t.url.href);
      this.#log.info({ webhook: t.id, origin: t.origin, types: t.types, after: t.cursor.seq }, 'webhook delivering');
      this.#loops.push(this.#run(t).catch((err: unknown) => this.#log.error({ err, webhook: t.id }, 'webhook delivery stopped')));
    }
  }

  async close(): Promise<void> {
    this.#stop.abort();
    for (const t of this.#targets) t.inFlight?.destroy();
    await Promise.all(this.#loops);
    for (const t of this.#targets) {
      await t.saved;
      t.agent.destroy();
    }
  }

  webhooks(): ReturnType<WebhookStats['webhooks']> {
    return this.#targets.map((t) => ({ id: t.id, origin: t.origin, counts: { ...t.counts }, depth: t.cursor ? queueDepth(this.#db, t.cursor.seq, t.types, this.#cfg.maxQueued) : 0 }));
  }

  async #wait(ms: number): Promise<boolean> {
    try {
      await sleep(ms, undefined, { signal: this.#stop.signal });
      return true;
    } catch {
      return false;
    }
  }

  async #run(t: Target): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      const cursor = t.cursor as WebhookCursorRecord;
      const next = nextLine(this.#db, cursor.seq, t.types, this.#cfg.maxQueued);
      if (next.dropped > 0) {
        t.counts.dropped += next.dropped;
        this.#log.warn({ webhook: t.id, origin: t.origin, dropped: next.dropped, droppedTotal: t.counts.dropped }, 'webhook queue full or log trimmed: oldest undelivered events dropped');
      }
      if (next.skipTo !== cursor.seq) this.#move(t, next.skipTo);
      const event = next.event;
      if (!event) {
        if (!(await this.#wait(IDLE_POLL_MS))) return;
        continue;
      }
      const failure = await this.#attempt(t, event);
      if (signal.aborted) return;
      if (failure === undefined) {
        t.counts.delivered++;
        this.#log.debug({ webhook: t.id, seq: event.seq }, 'webhook delivered');
        this.#move(t, event.seq);
        continue;
      }
      t.counts.failed++;
      const now = Date.now();
      const attempts = (t.cursor as WebhookCursorRecord).attempts + 1;
      const firstAttemptAt = (t.cursor as WebhookCursorRecord).firstAttemptAt ?? new Date(now).toISOString();
      const ageSeconds = (now - Date.parse(firstAttemptAt)) / 1000;
      if (attempts >= this.#cfg.maxAttempts || ageSeconds >= this.#cfg.maxAgeSeconds) {
        t.counts.gave_up++;
        this.#log.warn({ webhook: t.id, origin: t.origin, seq: event.seq, attempts, reason: failure }, 'webhook delivery given up: event dropped');
        this.#move(t, event.seq);
        continue;
      }
      t.cursor = { ...(t.cursor as WebhookCursorRecord), attempts, firstAttemptAt };
      this.#save(t);
      const delay = backoffMs(attempts, this.#cfg);
      const level = attempts === 1 || attempts % 10 === 0 ? 'warn' : 'debug';
      this.#log[level]({ webhook: t.id, origin: t.origin, seq: event.seq, attempts, retryInMs: delay, reason: failure }, 'webhook delivery failed: retrying');
      if (!(await this.#wait(delay))) return;
    }
  }

  #move(t: Target, seq: number): void {
    t.cursor = { ...(t.cursor as WebhookCursorRecord), seq, attempts: 0, firstAttemptAt: null };
    this.#save(t);
  }

  /**
   * Writes the cursor without waiting for the disk: deliveries are at-least-once anyway (a crash
   * before the write lands sends the last events again; receivers deduplicate on the id), and
   * waiting for each commit would cap delivery at the disk's sync rate.
   */
  #save(t: Target): void {
    const cursor = t.cursor as WebhookCursorRecord;
    t.saved = saveCursor(this.#db, t.id, cursor).catch((err: unknown) => this.#log.error({ err, webhook: t.id }, 'webhook cursor not saved'));
  }

  /** One POST; undefined when the receiver answered 2xx, else why not. */
  #attempt(t: Target, event: EventRecord): Promise<string | undefined> {
    const body = Buffer.from(JSON.stringify(toCloudEvent(event, this.#source)));
    const headers = {
      'content-type': CLOUDEVENTS_CONTENT_TYPE,
      'content-length': String(body.length),
      'user-agent': 'harbor-satellite-groundcontrol',
      ...signatureHeaders(t.secret, body),
    };
    const send = t.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve) => {
      let settled = false;
      const done = (why: string | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        t.inFlight = undefined;
        resolve(why);
      };
      // node:http never follows redirects: a 3xx is a failed attempt like any non-2xx.
      const req = send(t.url, { method: 'POST', headers, agent: t.agent }, (res) => {
        const status = res.statusCode ?? 0;
        const answer = status >= 200 && status < 300 ? undefined : `HTTP ${status}`;
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) {
            res.destroy();
            done(answer);
          }
        });
        res.on('end', () => done(answer));
        res.on('error', () => done(answer));
        res.on('close', () => done(answer));
      });
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.#cfg.timeoutSeconds} s`)), this.#cfg.timeoutSeconds * 1000);
      t.inFlight = req;
      req.on('error', (err) => done(err.message || (err as NodeJS.ErrnoException).code || 'request failed'));
      req.end(body);
    });
  }
}

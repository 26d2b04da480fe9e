import type { Logger } from 'pino';
import type { ControlState, OutboxRecord } from '../store/index.ts';
import { ControlErrorCode, controlError } from './errors.ts';
import type { ControlStore } from './ports.ts';

/** What a message is: state reports supersede each other, results and events never do. */
export type OutboxKind = OutboxRecord['kind'];

/** A message to send: the stored record without its write time. */
export type OutboxItem = Omit<OutboxRecord, 'at'>;

export interface OutboxStats {
  pending: number;
  pendingReports: number;
  sent: number;
  /** Results and events dropped because the outbox was full (also reported as an event). */
  dropped: number;
  /** Unsent state reports superseded by newer ones. */
  coalesced: number;
  /** When the broker last acknowledged a state report from this process (ISO time), else null. */
  lastReportSentAt: string | null;
}

export interface OutboxOptions {
  store: ControlStore;
  log: Logger;
  maxEntries: number;
  maxReports: number;
  /** QoS 1 publish; resolves on PUBACK. */
  publish: (item: OutboxItem) => Promise<void>;
  isConnected: () => boolean;
  /** The event that reports `count` dropped messages (enqueued once the outbox can flush again). */
  overflowEvent: (count: number) => OutboxItem;
}

/**
 * Every outgoing report, result and event is first written here (LMDB, durable, ordered by an
 * increasing integer key), then published QoS 1 one at a time in key order and removed only after
 * its PUBACK. It survives restarts and outages; a flush starts on every (re)connect and enqueue.
 * Bounded: past maxReports unsent state reports the oldest is superseded; past maxEntries the
 * oldest state report goes first, then the oldest message, counted and reported as an event.
 */
export class Outbox {
  readonly #opts: OutboxOptions;
  readonly #db: ControlState;
  /** Keys in the database, ascending, and the kind of each. */
  readonly #keys: number[] = [];
  readonly #kinds = new Map<number, OutboxKind>();
  #reportCount = 0;
  #nextKey = 1;
  #inflight: number | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #pumping: Promise<void> | undefined;
  #closed = false;
  #sent = 0;
  #lastReportSentAt: number | undefined;
  #coalesced = 0;
  #dropped: number;

  constructor(opts: OutboxOptions) {
    this.#opts = opts;
    this.#db = opts.store.controlState;
    this.#dropped = this.#db.counter('outboxDropped') ?? 0;
    this.#rescan();
  }

  /**
   * Writes the items `build` returns, durably and in order, in one transaction (build runs inside
   * it, so it may write related records: a sequence number, a command's outcome). Then flushes.
   */
  enqueue(build: () => OutboxItem[]): Promise<void> {
    const run = this.#chain.then(async () => {
      if (this.#closed) throw controlError(ControlErrorCode.closed, 'control plane is closing');
      // New keys join the in-memory queue only once committed: the pump must never see a key
      // whose record is not readable yet. Removals leave it at once (they must not be sent).
      const staged: Array<[number, OutboxKind]> = [];
      try {
        await this.#db.transaction(() => {
          let dropped = 0;
          const size = () => this.#keys.length + staged.length;
          const reports = () => this.#reportCount + staged.filter(([, k]) => k === 'state').length;
          const removeOldest = (kind: OutboxKind | undefined): boolean => {
            if (this.#removeOldest(kind)) return true;
            const i = staged.findIndex(([, k]) => kind === undefined || k === kind);
            if (i < 0) return false;
            void this.#db.removeOutboxItem(staged[i]![0]);
            staged.splice(i, 1);
            return true;
          };
          for (const item of build()) {
            if (item.kind === 'state') {
              while (reports() >= this.#opts.maxReports && removeOldest('state')) this.#coalesced++;
            }
            while (size() >= this.#opts.maxEntries) {
              if (removeOldest('state')) this.#coalesced++;
              else if (removeOldest(undefined)) dropped++;
              else break;
            }
            const key = this.#nextKey++;
            this.#db.putOutboxItem(key, { ...item, at: Date.now() });
            staged.push([key, item.kind]);
          }
          if (dropped > 0) {
            this.#dropped += dropped;
            this.#db.setCounter('outboxDropped', this.#dropped);
            this.#opts.log.warn({ dropped, total: this.#dropped }, 'outbox full; oldest messages dropped');
          }
        });
      } catch (err) {
        // The transaction did not commit: reload what is really stored.
        this.#rescan();
        throw err;
      }
      for (const [key, kind] of staged) {
        this.#keys.push(key);
        this.#kinds.set(key, kind);
        if (kind === 'state') this.#reportCount++;
      }
      this.flush();
    });
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Starts publishing what is queued, if connected and not already doing so. */
  flush(): void {
    if (this.#pumping || this.#closed || !this.#opts.isConnected()) return;
    this.#pumping = this.#pump().then(
      (drained) => {
        this.#pumping = undefined;
        // An enqueue that finished while the pump was winding down found it busy: look again.
        if (drained && this.#keys.length > 0) this.flush();
      },
      (err: unknown) => {
        this.#pumping = undefined;
        this.#opts.log.error({ err }, 'outbox flush failed');
      },
    );
  }

  /** Called on every (re)connect: reports what was dropped, then flushes. */
  connected(): void {
    if (this.#dropped > 0 && !this.#closed) {
      void this.enqueue(() => {
        const count = this.#dropped;
        this.#dropped = 0;
        this.#db.setCounter('outboxDropped', 0);
        return count > 0 ? [this.#opts.overflowEvent(count)] : [];
      }).catch((err: unknown) => this.#opts.log.error({ err }, 'cannot record outbox overflow'));
    }
    this.flush();
  }

  /** Waits (up to timeoutMs) until everything queued is published; false when some is left. */
  async drain(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    await this.#chain;
    while (this.#keys.length > 0 && Date.now() < deadline && this.#opts.isConnected()) {
      this.flush();
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.#keys.length === 0;
  }

  stats(): OutboxStats {
    return { pending: this.#keys.length, pendingReports: this.#reportCount, sent: this.#sent, dropped: this.#dropped, coalesced: this.#coalesced, lastReportSentAt: this.#lastReportSentAt === undefined ? null : new Date(this.#lastReportSentAt).toISOString() };
  }

  /** Stops publishing and refuses new items; what is queued stays for the next start. */
  async close(): Promise<void> {
    await this.#chain;
    this.#closed = true;
    await this.#pumping;
  }

  /** Publishes in key order; true when it stopped because the queue was empty. */
  async #pump(): Promise<boolean> {
    while (!this.#closed && this.#opts.isConnected()) {
      const key = this.#keys[0];
      if (key === undefined) return true;
      const item = this.#db.outboxItem(key);
      if (!item) {
        this.#forget(key);
        continue;
      }
      this.#inflight = key;
      try {
        await this.#opts.publish(item);
      } catch (err) {
        // Connection dropped or closing: the item stays first in line for the next flush.
        this.#opts.log.debug({ err: (err as Error).message }, 'outbox publish interrupted');
        return false;
      } finally {
        this.#inflight = undefined;
      }
      this.#sent++;
      if (item.kind === 'state') this.#lastReportSentAt = Date.now();
      // Not durable on purpose: a power cut now only means this message is sent once more.
      if (this.#kinds.has(key)) {
        this.#forget(key);
        await this.#db.removeOutboxItem(key);
      }
    }
    return false;
  }

  /** Removes the oldest entry (of a kind, or any), never the one being published. */
  #removeOldest(kind: OutboxKind | undefined): boolean {
    const key = this.#keys.find((k) => k !== this.#inflight && (kind === undefined || this.#kinds.get(k) === kind));
    if (key === undefined) return false;
    void this.#db.removeOutboxItem(key);
    this.#forget(key);
    return true;
  }

  #forget(key: number): void {
    const i = this.#keys.indexOf(key);
    if (i >= 0) this.#keys.splice(i, 1);
    if (this.#kinds.get(key) === 'state') this.#reportCount--;
    this.#kinds.delete(key);
  }

  #rescan(): void {
    this.#keys.length = 0;
    this.#kinds.clear();
    this.#reportCount = 0;
    for (const { key, kind } of this.#db.outboxKeys()) {
      this.#keys.push(key);
      this.#kinds.set(key, kind);
      if (kind === 'state') this.#reportCount++;
    }
    this.#nextKey = Math.max(this.#nextKey, (this.#keys.at(-1) ?? 0) + 1);
  }
}

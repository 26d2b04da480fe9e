import type { Database } from 'lmdb';
import type { Logger } from 'pino';
import { Channel, MAX_PAYLOAD_BYTES, encodeMessage, topic, type DiskReport, type ImageReport, type StateMessage } from '../protocol/index.ts';
import type { SyncStatus } from '../sync/index.ts';
import { clip } from './errors.ts';
import { isStorageWriteFault } from '../store/index.ts';
import type { Outbox } from './outbox.ts';
import type { ControlStore, SyncPort } from './ports.ts';

export interface StateInput {
  satelliteId: string;
  seq: number;
  version: string;
  sync: SyncStatus;
  disk: DiskReport;
  /** Newest desired generation received over MQTT in this process, if any. */
  received: number | null;
  /** peers.advertiseUrl, when this satellite shares blobs with its site. */
  peerUrl?: string | undefined;
}

/** The state report: what is desired, what is applied, every image's status, disk and upstream. */
export function buildStateMessage(input: StateInput): StateMessage {
  const { sync } = input;
  const desired = [input.received, sync.desiredGeneration].filter((g): g is number => g !== null);
  const last = sync.lastRun;
  return {
    type: 'state',
    satelliteId: input.satelliteId,
    seq: input.seq,
    at: new Date().toISOString(),
    version: clip(input.version, 64),
    desiredGeneration: desired.length > 0 ? Math.max(...desired) : null,
    appliedGeneration: sync.appliedGeneration,
    images: sync.images.slice(0, 10000).map((img) => {
      const r: ImageReport = { repository: clip(img.repository, 255), reference: clip(img.reference, 200), status: img.status };
      if (img.digest !== undefined) r.digest = clip(img.digest, 200);
      if (img.code !== undefined) r.code = clip(img.code, 100);
      if (img.reason !== undefined) r.reason = clip(img.reason, 4000);
      if (img.bytesNeeded !== undefined) r.bytesNeeded = img.bytesNeeded;
      if (img.bytesAvailable !== undefined) r.bytesAvailable = img.bytesAvailable;
      if (img.signature !== undefined) r.signature = img.signature;
      if (img.signatureKey !== undefined) r.signatureKey = clip(img.signatureKey, 64);
      return r;
    }),
    disk: input.disk,
    lastSync: last
      ? { result: last.result, finishedAt: last.finishedAt, bytesFromUpstream: last.bytesFromUpstream, errors: last.errors.length }
      : null,
    upstream: { reachable: sync.upstream.reachable, lastError: sync.upstream.lastError === null ? null : clip(sync.upstream.lastError, 4000) },
    ...(input.peerUrl ? { peerUrl: input.peerUrl } : {}),
  };
}

/**
 * Keeps a report under MAX_PAYLOAD_BYTES: first without failure reasons, then with the images that
 * need attention listed before the healthy ones, cut at the limit.
 */
export function fitPayload(message: StateMessage): StateMessage {
  const limit = MAX_PAYLOAD_BYTES - 64; // room for the seq assigned later
  if (encodeMessage(message).length <= limit) return message;
  const images = message.images.map(({ reason: _r, ...img }) => img);
  images.sort((a, b) => Number(a.status === 'ok') - Number(b.status === 'ok'));
  let fitted = { ...message, images };
  while (encodeMessage(fitted).length > limit && fitted.images.length > 0) {
    fitted = { ...fitted, images: fitted.images.slice(0, Math.floor(fitted.images.length * 0.9)) };
  }
  return fitted;
}

export interface ReporterOptions {
  satelliteId: string;
  version: string;
  store: ControlStore;
  outbox: Outbox;
  log: Logger;
  intervalSeconds: number;
  received: () => number | null;
  isConnected: () => boolean;
  peerUrl?: string | undefined;
  /**
   * Publishes at once, not durably: the fallback when the outbox cannot be written (a full or
   * read-only disk), so Ground Control still hears about the state that stops the satellite storing.
   */
  publishNow?: ((topic: string, payload: string) => Promise<void>) | undefined;
}

const SEQ_KEY = 'stateSeq';

/**
 * Sends state reports: on connect, after every sync run, on the `report` command, on request
 * (debounced), and every intervalSeconds. seq is persisted and increases across restarts.
 */
export class Reporter {
  readonly #opts: ReporterOptions;
  readonly #meta: Database<number, string>;
  #sync: SyncPort | undefined;
  #interval: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: ReporterOptions) {
    this.#opts = opts;
    this.#meta = opts.store.metaDb<number, string>('control-meta');
  }

  start(sync: SyncPort): void {
    this.#sync = sync;
    this.#interval = setInterval(() => {
      // While offline one queued report is enough: the next connect sends a fresh one anyway.
      if (!this.#opts.isConnected() && this.#opts.outbox.stats().pendingReports > 0) return;
      this.request();
    }, this.#opts.intervalSeconds * 1000);
    this.#interval.unref();
  }

  /** A report soon; requests within 100 ms make one report. */
  request(): void {
    if (this.#debounce || this.#closed || !this.#sync) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      this.report().catch((err: unknown) => this.#opts.log.warn({ err }, 'state report not queued'));
    }, 100);
  }

  /** Queues a report now; resolves with its seq once it is durably in the outbox. */
  async report(): Promise<number> {
    const sync = this.#sync;
    if (!sync) throw new Error('reporter not started');
    const draft = fitPayload(
      buildStateMessage({
        satelliteId: this.#opts.satelliteId,
        seq: 0,
        version: this.#opts.version,
        sync: sync.status(),
        disk: diskReport(this.#opts.store),
        received: this.#opts.received(),
        peerUrl: this.#opts.peerUrl,
      }),
    );
    let seq = 0;
    const stateTopic = topic(this.#opts.satelliteId, Channel.state);
    try {
      await this.#opts.outbox.enqueue(() => {
        seq = (this.#meta.get(SEQ_KEY) ?? 0) + 1;
        this.#meta.put(SEQ_KEY, seq);
        const message: StateMessage = { ...draft, seq };
        return [{ kind: 'state', topic: stateTopic, payload: encodeMessage(message).toString('utf8'), retain: true }];
      });
    } catch (err) {
      if (!this.#opts.publishNow || !this.#opts.isConnected() || !isStorageWriteFault(err)) throw err;
      // The seq cannot be persisted either: one past the last stored keeps Ground Control's ordering.
      seq = (this.#meta.get(SEQ_KEY) ?? 0) + 1;
      await this.#opts.publishNow(stateTopic, encodeMessage({ ...draft, seq }).toString('utf8'));
      this.#opts.log.warn({ seq, disk: draft.disk.condition }, 'state report published directly: the outbox cannot be written');
    }
    return seq;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#interval);
    clearTimeout(this.#debounce);
  }
}

/** Stored blobs plus free space and the disk's condition (DISK_FULL and read-only show here). */
function diskReport(store: ControlStore): DiskReport {
  const d = store.disk.refresh();
  return { ...store.usage(), condition: d.condition, freeBytes: d.freeBytes, minFreeBytes: d.minFreeBytes };
}

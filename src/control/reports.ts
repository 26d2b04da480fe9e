import type { Database } from 'lmdb';
import type { Logger } from 'pino';
import {
  Channel,
  MAX_PAYLOAD_BYTES,
  MAX_STRAY_PULLS,
  encodeMessage,
  topic,
  type DiskReport,
  type DownloadReport,
  type ImageReport,
  type ProcessReport,
  type ProxyReport,
  type StateMessage,
  type StrayPullReport,
  type TrafficReport,
} from '../protocol/index.ts';
import { referenceMatcher } from '../oci/reference-set.ts';
import type { SyncStatus } from '../sync/index.ts';
import { clip } from './errors.ts';
import { isStorageWriteFault } from '../store/index.ts';
import type { Outbox } from './outbox.ts';
import type { ControlStore, SyncPort } from './ports.ts';
import { processReport, readBoardModel, type ReportSources } from './report-inputs.ts';
import { reportReason, summarize, type ReportSummary, type TriggerOptions } from './report-trigger.ts';

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
  traffic?: TrafficReport | undefined;
  proxy?: ProxyReport | undefined;
  process?: ProcessReport | undefined;
  /** Pull counts as recorded, busiest first; those the desired state now holds are left out here. */
  strayPulls?: StrayPullReport[] | undefined;
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
      if (img.status === 'pending' && img.bytesTotal !== undefined) {
        r.bytesTotal = img.bytesTotal;
        r.bytesDone = Math.min(img.bytesDone ?? 0, img.bytesTotal);
      }
      return r;
    }),
    disk: input.disk,
    lastSync: last
      ? { result: last.result, finishedAt: last.finishedAt, bytesFromUpstream: last.bytesFromUpstream, errors: last.errors.length }
      : null,
    upstream: { reachable: sync.upstream.reachable, lastError: sync.upstream.lastError === null ? null : clip(sync.upstream.lastError, 4000) },
    ...(input.peerUrl ? { peerUrl: input.peerUrl } : {}),
    ...optional('download', downloadReport(sync.images)),
    ...optional('traffic', input.traffic),
    ...optional('proxy', input.proxy),
    ...optional('process', input.process),
    ...optional('strayPulls', strayPulls(input.strayPulls, sync.images)),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [k in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [k in K]?: V };
}

/** Downloads in progress: the bytes done and total of the pending images, summed. */
function downloadReport(images: SyncStatus['images']): DownloadReport | undefined {
  let done = 0;
  let total = 0;
  let any = false;
  for (const i of images) {
    if (i.status !== 'pending' || i.bytesTotal === undefined) continue;
    any = true;
    total += i.bytesTotal;
    done += Math.min(i.bytesDone ?? 0, i.bytesTotal);
  }
  return any ? { bytesDone: done, bytesTotal: total, bytesRemaining: total - done } : undefined;
}

/** The recorded stray pulls minus what the desired state holds now, at most MAX_STRAY_PULLS. */
function strayPulls(recorded: StrayPullReport[] | undefined, images: SyncStatus['images']): StrayPullReport[] | undefined {
  if (!recorded || recorded.length === 0) return undefined;
  const desired = referenceMatcher(images);
  const out = recorded
    .filter((p) => !desired(p.repository, p.reference))
    .slice(0, MAX_STRAY_PULLS)
    .map((p) => ({ repository: clip(p.repository, 255), reference: clip(p.reference, 200), pulls: p.pulls, notFound: p.notFound }));
  return out.length > 0 ? out : undefined;
}

/**
 * Keeps a report under MAX_PAYLOAD_BYTES: first without the stray pulls, then without failure
 * reasons, then with the images that need attention listed before the healthy ones, cut at the limit.
 */
export function fitPayload(message: StateMessage): StateMessage {
  const limit = MAX_PAYLOAD_BYTES - 64; // room for the seq assigned later
  if (encodeMessage(message).length <= limit) return message;
  const { strayPulls: _s, ...withoutStrays } = message;
  message = withoutStrays;
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
  /** When a report goes out between the periodic ones (report-trigger.ts). */
  trigger: TriggerOptions;
  /** How often the cheap "should I report?" check runs; default CHECK_MS. */
  checkMs?: number | undefined;
}

const SEQ_KEY = 'stateSeq';
/** The "should I report?" check: a report's worth of reads, compared in memory, nothing sent if idle. */
const CHECK_MS = 3000;

/**
 * Sends state reports: a full one on connect, on the `report` command, on request (debounced) and
 * every intervalSeconds; in between only when the check finds that something crossed a threshold
 * (report-trigger.ts), so an idle satellite on a metered link sends nothing. seq is persisted and
 * increases across restarts.
 */
export class Reporter {
  readonly #opts: ReporterOptions;
  readonly #meta: Database<number, string>;
  readonly #board: string | undefined;
  #sync: SyncPort | undefined;
  #sources: ReportSources = {};
  #interval: NodeJS.Timeout | undefined;
  #checker: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  /** What the last queued report said, for the threshold check. */
  #sent: ReportSummary | undefined;
  #closed = false;

  constructor(opts: ReporterOptions) {
    this.#opts = opts;
    this.#meta = opts.store.metaDb<number, string>('control-meta');
    this.#board = readBoardModel();
  }

  start(sync: SyncPort, sources: ReportSources = {}): void {
    this.#sync = sync;
    this.#sources = sources;
    this.#interval = setInterval(() => {
      // While offline one queued report is enough: the next connect sends a fresh one anyway.
      if (!this.#opts.isConnected() && this.#opts.outbox.stats().pendingReports > 0) return;
      this.request();
    }, this.#opts.intervalSeconds * 1000);
    this.#interval.unref();
    this.#checker = setInterval(() => this.check(), this.#opts.checkMs ?? CHECK_MS);
    this.#checker.unref();
  }

  /**
   * Requests a report if something changed enough since the last one (a status, a generation, a
   * progress or disk step, reachability); offline, nothing: the connect report will say it all.
   */
  check(): string | undefined {
    if (this.#closed || !this.#sync || this.#debounce || !this.#opts.isConnected()) return undefined;
    let reason: string | undefined;
    try {
      reason = reportReason(this.#sent, summarize(this.#draft(this.#sync, false)), this.#opts.trigger);
    } catch (err) {
      this.#opts.log.warn({ err }, 'state report check failed');
      return undefined;
    }
    if (reason) {
      this.#opts.log.debug({ reason }, 'state changed: report');
      this.request();
    }
    return reason;
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
    const full = this.#draft(sync);
    // The summary of what was measured, not of the fitted payload: a cut list must not look like news.
    this.#sent = summarize(full);
    const draft = fitPayload(full);
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
    clearInterval(this.#checker);
    clearTimeout(this.#debounce);
  }

  /** The report as of now; without the counters (not compared) when only checking. */
  #draft(sync: SyncPort, counters = true): StateMessage {
    const src: ReportSources = counters ? this.#sources : {};
    return buildStateMessage({
      satelliteId: this.#opts.satelliteId,
      seq: 0,
      version: this.#opts.version,
      sync: sync.status(),
      disk: diskReport(this.#opts.store),
      received: this.#opts.received(),
      peerUrl: this.#opts.peerUrl,
      traffic: src.traffic?.(),
      proxy: src.proxy?.(),
      process: counters ? processReport(this.#board) : undefined,
      // Twice as many as a report holds: some may have joined the desired state since recorded.
      strayPulls: src.strayPulls?.(MAX_STRAY_PULLS * 2),
    });
  }
}

/** Stored blobs plus free space and the disk's condition (DISK_FULL and read-only show here). */
function diskReport(store: ControlStore): DiskReport {
  const d = store.disk.refresh();
  return { ...store.usage(), condition: d.condition, freeBytes: d.freeBytes, minFreeBytes: d.minFreeBytes, totalBytes: d.totalBytes };
}

import type { Logger } from 'pino';
import { isDigest } from '../lib/digest.ts';
import { isSatelliteError, type SatelliteError } from '../lib/errors.ts';
import { Limiter } from '../lib/limiter.ts';
import { isDiskError, type Store } from '../store/index.ts';
import { decideTrust, keepSignatures, type TrustDecision } from '../trust/index.ts';
import { admit, diskFullDetail } from './admission.ts';
import { refKey, type DesiredState } from './desired-state.ts';
import type { DownloadResult } from './downloader.ts';
import { SyncErrorCode } from './errors.ts';
import type { RunReport } from './image-state.ts';
import type { ImagePlan } from './plan.ts';
import type { SyncRecords } from './records.ts';
import type { UpstreamPort } from './upstream-port.ts';

/** Blobs under this size are latency-bound: fetched under sync.planConcurrency, not sync.concurrency. */
const SMALL_BLOB_BYTES = 1024 * 1024;

/** What the images of one run share while they are applied side by side. */
export interface ApplyContext {
  upstream: UpstreamPort;
  /** The desired state's signature policy, if any. */
  trust: DesiredState['trust'];
  /** sync.maxReferrers: referrers read per image for its signature check. */
  maxReferrers: number;
  report: RunReport;
  log: Logger;
  signal: AbortSignal;
  /** Manifests that references no longer hold, per repository (pruned after the run). */
  replaced: Map<string, Set<string>>;
  /** Bytes each image refused for space was short by. */
  shortBy: number[];
  largeSlots: Limiter;
  smallSlots: Limiter;
  /** Images downloading now; each settles (never rejects) after its reservation is released. */
  downloading: Set<Promise<void>>;
  /** Partials admission may not drop (known once every reference is planned). */
  keep: () => ReadonlySet<string> | undefined;
}

/** What applying an image needs from the engine. */
export interface ApplyDeps {
  store: Store;
  records: SyncRecords;
  /** sync.concurrency: large blobs at once when no run's slots are given. */
  concurrency: number;
  /** Why downloads must wait now (window closed, cap reached), if they must. */
  gate: (phase: 'start' | 'stream') => SatelliteError | undefined;
  /** One blob, joined with any fetch of it in flight (the engine's single flight). */
  download(upstream: UpstreamPort, log: Logger, repo: string, want: { digest: string; size: number }, signal: AbortSignal): Promise<DownloadResult>;
}

/**
 * One image: its blobs admitted by free space and downloaded, then committed and served. Images
 * run side by side (each starts when its plan is known); the reservations of images still
 * downloading may count a shared layer twice, so an image refused for space waits for one of
 * them to end and asks again, and is refused only when nothing else is downloading.
 */
export async function applyImage(engine: ApplyDeps, plan: ImagePlan, c: ApplyContext): Promise<void> {
  const { report, log, signal } = c;
  signal.throwIfAborted();
  let release: () => void;
  for (;;) {
    try {
      release = await admit(engine.store, plan.blobs, `image ${refKey(plan.ref)}`, log, c.keep());
      break;
    } catch (err) {
      if (signal.aborted || !isDiskError(err)) throw err;
      if (c.downloading.size > 0) {
        await Promise.race(c.downloading);
        continue;
      }
      const d = diskFullDetail(err);
      if (d) c.shortBy.push(d.bytesNeeded);
      log.warn({ ref: refKey(plan.ref), code: codeOf(err), ...d }, 'image waits for disk space; nothing downloaded');
      await engine.records.setImage(plan.ref, { status: 'failed', code: codeOf(err), reason: (err as Error).message, ...d });
      report.errors.push({ ref: refKey(plan.ref), code: codeOf(err), message: (err as Error).message });
      return;
    }
  }
  const task = (async () => {
    try {
      return await downloadBlobs(engine, [plan], c.upstream, report, log, signal, c);
    } finally {
      release();
    }
  })();
  const tracked: Promise<void> = task.then(
    () => undefined,
    () => undefined,
  ).finally(() => c.downloading.delete(tracked));
  c.downloading.add(tracked);
  const blobErrors = await task;
  // Stopping: downloads are checkpointed; record nothing as failed for a run cut short.
  signal.throwIfAborted();
  const missing = plan.blobs.find((b) => !engine.store.hasBlob(b.digest));
  if (missing) {
    const err = blobErrors.get(missing.digest);
    const paused = err && isSatelliteError(err, SyncErrorCode.paused);
    const d = diskFullDetail(err);
    if (d) c.shortBy.push(d.bytesNeeded);
    await engine.records.setImage(plan.ref, {
      status: paused ? 'pending' : 'failed',
      code: err ? codeOf(err) : 'BLOB_MISSING',
      reason: err ? err.message : `blob ${missing.digest} not downloaded`,
      ...d,
    });
    if (!paused) report.errors.push({ ref: refKey(plan.ref), digest: missing.digest, code: err ? codeOf(err) : 'BLOB_MISSING', message: err?.message ?? 'not downloaded' });
    return;
  }
  const { repository, reference } = plan.ref;
  let trust: TrustDecision | undefined;
  try {
    trust = await decideTrust(c.upstream, c.trust, { repository, digest: plan.digest }, log, signal, { maxReferrers: c.maxReferrers });
  } catch (err) {
    signal.throwIfAborted();
    await engine.records.setImage(plan.ref, { status: 'failed', code: codeOf(err), reason: `signature check: ${(err as Error).message}` });
    report.errors.push({ ref: refKey(plan.ref), code: codeOf(err), message: (err as Error).message });
    return;
  }
  if (trust?.refused) {
    await refuseImage(engine.records, plan, trust, report);
    return;
  }
  await engine.store.commitImage(repository, plan.manifests, isDigest(reference) ? [] : [reference], { allowMissingChildren: true, linkStoredBlobs: true });
  const old = await engine.records.recordHeld(plan.ref, plan.manifests.map((m) => m.digest));
  if (old.length > 0) c.replaced.set(repository, new Set([...(c.replaced.get(repository) ?? []), ...old]));
  await keepSignatures(engine.store, repository, trust, log);
  await engine.records.setImage(plan.ref, { status: 'ok', digest: plan.digest, ...trust?.fields });
  log.info({ repository, reference, digest: plan.digest }, 'image synced');
}

/** The blobs of `plans` the store lacks, each downloaded once (small ones under the plan's slots); errors by digest. */
export async function downloadBlobs(
  engine: ApplyDeps,
  plans: ImagePlan[],
  upstream: UpstreamPort,
  report: RunReport,
  log: Logger,
  signal: AbortSignal,
  slots?: { largeSlots: Limiter; smallSlots: Limiter },
): Promise<Map<string, Error>> {
  const needed = new Map<string, { repo: string; size: number }>();
  for (const plan of plans) {
    for (const b of plan.blobs) {
      if (!engine.store.hasBlob(b.digest) && !needed.has(b.digest)) needed.set(b.digest, { repo: plan.ref.repository, size: b.size });
    }
  }
  const errors = new Map<string, Error>();
  if (needed.size === 0) return errors;
  const large = slots?.largeSlots ?? new Limiter(engine.concurrency);
  // A small blob (an image config, a thin layer) costs a round trip, not bandwidth: it is fetched
  // under the plan's concurrency, like a manifest; large ones share sync.concurrency.
  const small = slots?.smallSlots ?? large;
  await Promise.all(
    [...needed].map(([digest, { repo, size }]) =>
      (size < SMALL_BLOB_BYTES ? small : large).run(async () => {
        try {
          const held = engine.gate('start');
          if (held) throw held;
          const result = await engine.download(upstream, log, repo, { digest, size }, signal);
          report.blobsFetched++;
          if (result.resumedFrom > 0) report.blobsResumed++;
        } catch (err) {
          if (signal.aborted) return;
          errors.set(digest, err as Error);
          if (!isSatelliteError(err, SyncErrorCode.paused)) log.warn({ digest, err: (err as Error).message, code: codeOf(err) }, 'blob download failed');
        }
      }),
    ),
  );
  return errors;
}

/** Enforce refused the image: failed with SIGNATURE_REQUIRED / SIGNATURE_INVALID, nothing committed. */
export async function refuseImage(records: SyncRecords, plan: ImagePlan, trust: TrustDecision, report: RunReport): Promise<void> {
  const refused = trust.refused!;
  await records.setImage(plan.ref, { status: 'failed', digest: plan.digest, ...trust.fields, code: refused.code, reason: refused.reason });
  report.errors.push({ ref: refKey(plan.ref), digest: plan.digest, code: refused.code, message: refused.reason });
}

export function codeOf(err: unknown): string {
  return isSatelliteError(err) ? err.code : 'INTERNAL';
}

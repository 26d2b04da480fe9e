import type { Logger } from 'pino';
import { isDigest } from '../lib/digest.ts';
import { Limiter } from '../lib/limiter.ts';
import type { Store } from '../store/index.ts';
import { decideTrust, keepSignatures } from '../trust/index.ts';
import { applyImage, codeOf, refuseImage, type ApplyContext, type ApplyDeps } from './apply-image.ts';
import type { SyncConfig } from './config-schema.ts';
import { desiredRefs, refKey, type DesiredRef, type DesiredState } from './desired-state.ts';
import type { DiskHold } from './disk-hold.ts';
import type { ImageProgress } from './image-progress.ts';
import type { RunReport } from './image-state.ts';
import { planImage, type ImagePlan } from './plan.ts';
import { pruneRemoved } from './prune.ts';
import type { SyncRecords } from './records.ts';
import type { UpstreamPort } from './upstream-port.ts';
import type { WantedBlobs } from './wanted-blobs.ts';

/** The upstream port's code for a network failure (src/upstream/errors.ts): reachability is in question. */
const UPSTREAM_UNREACHABLE = 'UPSTREAM_UNREACHABLE';

/** What one run needs from the engine that holds it (SyncEngine is the only host). */
export interface RunHost {
  readonly config: SyncConfig;
  readonly store: Store;
  readonly records: SyncRecords;
  readonly log: Logger;
  /** Blobs the desired state references, as planned (what members may ask for). */
  readonly wanted: WantedBlobs;
  /** Images being applied now (status shows them pending with bytes done/total). */
  readonly progress: ImageProgress;
  readonly applyDeps: ApplyDeps;
  readonly diskHold: DiskHold;
  /** The run's abort signal: the engine closing, or a new desired state dropping references. */
  beginRun(): AbortSignal;
  /** The client for the upstream the desired state names (kept across runs, metered). */
  client(target: DesiredState['upstream']): UpstreamPort;
  /** Whether the last probe or run reached the upstream (null: not known yet). */
  reachable(): boolean | null;
  setReachable(reachable: boolean, error: string | null): void;
  /** Records the report, schedules the next run, tells listeners. */
  finish(report: RunReport, doc?: DesiredState, refs?: DesiredRef[]): Promise<RunReport>;
}

/**
 * One run: plans every reference of the desired state (pipelined, sync.planConcurrency at a time),
 * applies each image as soon as its plan is known, drops partials nobody wants, then prunes what
 * is no longer desired. The engine decides when runs happen (scheduler.ts) and what they report.
 */
export async function runSync(h: RunHost, doc: DesiredState | undefined): Promise<RunReport> {
  const startedAt = new Date();
  const report: RunReport = {
    generation: doc?.generation ?? 0,
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    result: 'ok',
    bytesFromUpstream: 0,
    blobsFetched: 0,
    blobsResumed: 0,
    untagged: 0,
    manifestsDeleted: 0,
    gcBytesFreed: 0,
    errors: [],
  };
  if (!doc) return h.finish(report);
  const signal = h.beginRun();
  const log = h.log.child({ generation: doc.generation });
  const refs = desiredRefs(doc, h.config.platforms);
  const upstream = h.client(doc.upstream);
  const started = performance.now();

  // The /v2/ probe costs a round trip: while the last run reached the upstream it is skipped (the
  // plan's own requests tell), and asked only when a reference fails to resolve on the network.
  let probed = false;
  if (h.reachable() !== true) {
    probed = true;
    await probe(h, doc, upstream, report, log, signal);
  }

  // Pipelined: references resolve concurrently (sync.planConcurrency), and each image starts
  // downloading as soon as its plan is known, not after the whole plan.
  const failures: Array<{ ref: DesiredRef; err: unknown }> = [];
  const wanted = new Set<string>();
  let planned = h.reachable() === true;
  const ctx: ApplyContext = {
    upstream,
    trust: doc.trust,
    maxReferrers: h.config.maxReferrers,
    report,
    log,
    signal,
    replaced: new Map(),
    shortBy: [],
    largeSlots: new Limiter(h.config.concurrency),
    smallSlots: new Limiter(h.config.planConcurrency),
    downloading: new Set(),
    keep: () => undefined,
  };
  const imageSlots = new Limiter(h.config.planConcurrency);
  const applying: Array<Promise<void>> = [];
  let transferStart: number | undefined;
  report.unchanged = 0;
  h.wanted.begin();
  try {
    if (h.reachable()) {
      await upstream.prepare?.([...new Set(refs.map((r) => r.repository))]);
      const planSlots = new Limiter(h.config.planConcurrency);
      await Promise.all(
        refs.map((ref) =>
          planSlots.run(async () => {
            if (signal.aborted) return;
            let plan: ImagePlan;
            try {
              plan = await planImage(upstream, h.store, ref, log, signal);
            } catch (err) {
              if (!signal.aborted) failures.push({ ref, err });
              return;
            }
            h.wanted.add(ref.repository, plan.blobs);
            if (plan.upToDate) {
              report.unchanged!++;
              // Checked again every run: a key rotated out in the desired state stops an image it signed.
              let trust;
              try {
                trust = await decideTrust(upstream, doc.trust, { repository: ref.repository, digest: plan.digest }, log, signal, { maxReferrers: ctx.maxReferrers });
              } catch (err) {
                // The check itself failed (an upstream error on a signature or referrers request): the
                // stored image stays as it is, this one image is failed for the run, the others go on.
                signal.throwIfAborted();
                report.errors.push({ ref: refKey(ref), code: codeOf(err), message: (err as Error).message });
                await h.records.setImage(ref, { status: 'failed', code: codeOf(err), reason: `signature check: ${(err as Error).message}` });
                return;
              }
              if (trust?.refused) {
                // Withdrawn whole: the tag now, its manifests by the prune below (no pull by digest either).
                if (!isDigest(ref.reference)) await h.store.deleteTag(ref.repository, ref.reference);
                const held = await h.records.dropHeld(ref);
                ctx.replaced.set(ref.repository, new Set([...(ctx.replaced.get(ref.repository) ?? []), ...held]));
                await refuseImage(h.records, plan, trust, report);
                return;
              }
              await keepSignatures(h.store, ref.repository, trust, log);
              await h.records.recordHeld(plan.ref, plan.manifests.map((m) => m.digest));
              await h.records.setImage(ref, { status: 'ok', digest: plan.digest, ...trust?.fields });
              return;
            }
            for (const b of plan.blobs) wanted.add(b.digest);
            transferStart ??= performance.now();
            h.progress.begin(plan.ref, plan.blobs);
            const p = imageSlots.run(() => applyImage(h.applyDeps, plan, ctx)).finally(() => h.progress.end(plan.ref));
            p.catch(() => undefined); // awaited below; handled here so an early failure is not "unhandled"
            applying.push(p);
          }),
        ),
      );
      signal.throwIfAborted();
      if (!probed && failures.some((f) => codeOf(f.err) === UPSTREAM_UNREACHABLE)) {
        await probe(h, doc, upstream, report, log, signal);
      }
      if (failures.length > 0) planned = false;
      // Upstream gone: like a failed probe, the images keep their state (served as stored).
      if (h.reachable()) {
        for (const { ref, err } of failures) {
          report.errors.push({ ref: refKey(ref), code: codeOf(err), message: (err as Error).message });
          await h.records.setImage(ref, { status: 'failed', code: codeOf(err), reason: (err as Error).message });
        }
      }
    }
  } catch (err) {
    await Promise.allSettled(applying);
    throw err;
  } finally {
    // An image that could not be resolved keeps what the last plan wanted of it.
    h.wanted.end(doc.generation, planned);
  }
  report.resolveMs = Math.round(performance.now() - started);
  log.debug({ resolveMs: report.resolveMs, refs: refs.length, unchanged: report.unchanged }, 'plan resolved');

  // Partials of images no longer desired go (only when every reference resolved: a reference
  // that failed to plan may still want its partial). Downloads in flight are all in `wanted`.
  if (planned) {
    ctx.keep = () => wanted;
    await h.store.discardOrphanPartials(wanted);
  }
  const results = await Promise.allSettled(applying);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  if (transferStart !== undefined) report.transferMs = Math.round(performance.now() - transferStart);
  const { replaced, shortBy } = ctx;
  h.diskHold.set(doc.generation, shortBy);
  await prune(h, refs, replaced, report, log);
  return h.finish(report, doc, refs);
}

/** GET /v2/: sets reachability; a failure is the run's error and nothing is planned. */
async function probe(h: RunHost, doc: DesiredState, upstream: UpstreamPort, report: RunReport, log: Logger, signal: AbortSignal): Promise<void> {
  try {
    await upstream.ping(signal);
    h.setReachable(true, null);
  } catch (err) {
    if (signal.aborted) throw err;
    h.setReachable(false, (err as Error).message);
    log.warn({ err: (err as Error).message, upstream: doc.upstream.url }, 'upstream unreachable; serving what is stored');
    report.errors.push({ code: codeOf(err), message: (err as Error).message });
  }
}

/** Removes what is no longer desired (prune.ts), forgets its state, and collects garbage if configured. */
async function prune(h: RunHost, refs: DesiredRef[], replaced: Map<string, Set<string>>, report: RunReport, log: Logger) {
  const keepRefs = new Set(refs.map(refKey));
  const keep = new Map<string, Set<string>>();
  for (const ref of refs) {
    const set = keep.get(ref.repository) ?? new Set<string>();
    for (const d of h.records.held(ref)) set.add(d);
    keep.set(ref.repository, set);
  }
  const pruned = await pruneRemoved(h.store, h.records.db, keep, keepRefs, replaced, log);
  report.untagged = pruned.untagged;
  report.manifestsDeleted = pruned.manifestsDeleted;
  await h.records.keepImages(keepRefs);
  if ((pruned.untagged > 0 || pruned.manifestsDeleted > 0) && h.config.gcAfterPrune) {
    report.gcBytesFreed = (await h.store.collectGarbage()).bytesFreed;
  }
}

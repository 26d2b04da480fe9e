import type { StateMessage } from '../protocol/index.ts';

/**
 * The few values of a state report whose change is news for Ground Control. Counters (traffic,
 * proxy, RSS, uptime, stray pulls) are not: they move all the time and ride along with the next
 * report that is sent anyway (on a change, or at control.reportIntervalSeconds).
 */
export interface ReportSummary {
  desiredGeneration: number | null;
  appliedGeneration: number | null;
  /** repository:reference -> status and code. */
  images: Map<string, string>;
  /** repository:reference -> bytes done and total of the images downloading. */
  progress: Map<string, { done: number; total: number }>;
  diskCondition: string | undefined;
  diskFree: number | undefined;
  diskTotal: number | undefined;
  reachable: boolean | null;
  lastSync: string | null;
}

export interface TriggerOptions {
  /** A download advanced by this share of its total (control.reportProgressStepPercent; 0 = never). */
  progressStepPercent: number;
  /** ... or by this many bytes, whichever comes first (control.reportProgressStepBytes; 0 = never). */
  progressStepBytes: number;
  /** Free space moved by this share of the disk's size since the last report. */
  diskStepPercent: number;
}

export function summarize(m: StateMessage): ReportSummary {
  const images = new Map<string, string>();
  const progress = new Map<string, { done: number; total: number }>();
  for (const i of m.images) {
    const key = `${i.repository}:${i.reference}`;
    images.set(key, `${i.status} ${i.code ?? ''}`);
    if (i.status === 'pending' && i.bytesTotal !== undefined) progress.set(key, { done: i.bytesDone ?? 0, total: i.bytesTotal });
  }
  return {
    desiredGeneration: m.desiredGeneration,
    appliedGeneration: m.appliedGeneration,
    images,
    progress,
    diskCondition: m.disk.condition,
    diskFree: m.disk.freeBytes,
    diskTotal: m.disk.totalBytes,
    reachable: m.upstream.reachable,
    lastSync: m.lastSync ? `${m.lastSync.result} ${m.lastSync.errors}` : null,
  };
}

/**
 * Why a report should go out now, comparing what was last sent with now; undefined when nothing
 * crossed a threshold (an idle satellite sends nothing between its periodic reports).
 */
export function reportReason(sent: ReportSummary | undefined, now: ReportSummary, opts: TriggerOptions): string | undefined {
  if (!sent) return 'first report';
  if (sent.desiredGeneration !== now.desiredGeneration) return 'desired generation';
  if (sent.appliedGeneration !== now.appliedGeneration) return 'applied generation';
  if (sent.reachable !== now.reachable) return 'upstream reachability';
  if (sent.diskCondition !== now.diskCondition) return 'disk condition';
  if (sent.lastSync !== now.lastSync) return 'sync result';
  if (sent.images.size !== now.images.size) return 'image status';
  for (const [key, status] of now.images) if (sent.images.get(key) !== status) return 'image status';
  for (const [key, p] of now.progress) {
    const before = sent.progress.get(key)?.done ?? 0;
    const steps = [opts.progressStepPercent > 0 ? (p.total * opts.progressStepPercent) / 100 : Infinity, opts.progressStepBytes > 0 ? opts.progressStepBytes : Infinity];
    const step = Math.max(1, Math.min(...steps));
    if (step !== Infinity && p.done - before >= step) return 'download progress';
  }
  if (now.diskFree !== undefined && now.diskTotal !== undefined && now.diskTotal > 0 && sent.diskFree !== undefined) {
    if (Math.abs(now.diskFree - sent.diskFree) >= (now.diskTotal * opts.diskStepPercent) / 100) return 'disk free space';
  }
  return undefined;
}

import type { ImageReport } from '../protocol/messages.ts';

/** Per-reference sync state, persisted; reported over MQTT as its ImageReport part. */
export interface ImageState extends ImageReport {
  updatedAt: string;
  lastOkAt?: string;
}

export interface RunReport {
  generation: number;
  startedAt: string;
  finishedAt: string;
  result: 'ok' | 'partial' | 'offline' | 'paused' | 'failed';
  /** Bytes read from the upstream during this run. */
  bytesFromUpstream: number;
  blobsFetched: number;
  blobsResumed: number;
  untagged: number;
  manifestsDeleted: number;
  gcBytesFreed: number;
  /**
   * Where the run's time went: resolving (from start until every reference is planned: tags,
   * manifests, indexes — round trips) and transferring (from the first blob download until the
   * last image is applied — bytes). They overlap when the plan is pipelined; a slow site with a
   * long resolve time is latency-bound, one with a long transfer time is bandwidth-bound.
   */
  resolveMs?: number;
  transferMs?: number;
  /** References whose manifest was re-checked upstream and had not moved. */
  unchanged?: number;
  errors: Array<{ ref?: string; digest?: string; code: string; message: string }>;
}

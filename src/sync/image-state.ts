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
  errors: Array<{ ref?: string; digest?: string; code: string; message: string }>;
}

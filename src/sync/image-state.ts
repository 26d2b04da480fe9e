/** Per-reference sync state, persisted and reported. */
export interface ImageState {
  repository: string;
  reference: string;
  status: 'ok' | 'pending' | 'failed';
  /** Digest stored for this reference when ok. */
  digest?: string;
  code?: string;
  reason?: string;
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

import type { BlobOrigin } from './source.ts';

/** A partial file opened for a fill (src/store's partial downloads). */
export interface OpenedPartial {
  path: string;
  /** Bytes in the file to keep: the fill re-hashes them and asks for the rest. */
  offset: number;
  /**
   * Bytes fsync'ed and recorded at the last checkpoint (<= offset). The tail between the two was
   * written before a crash: kept, but if the blob then fails its digest, only the tail is fetched again.
   */
  durable: number;
}

/** The store operations a fill uses (src/store's Store implements them). */
export interface FillStore {
  /** Keeps GC away from the digest until the returned function is called. */
  pin(digest: string): () => void;
  /** The size a partial of the digest was recorded with, when one exists (a resume after a restart). */
  partialSize(digest: string): number | undefined;
  /** Opens or resumes the partial file; `cache`: the pull-through cache's (a sync run does not drop it). */
  beginPartial(digest: string, size: number | undefined, opts?: { cache?: boolean }): Promise<OpenedPartial>;
  /** Records progress; the caller fsync'ed the file up to offset. */
  checkpointPartial(digest: string, offset: number): Promise<void>;
  /** Moves the complete, verified, fsync'ed partial into the blob store. */
  commitPartial(digest: string, size: number, repo?: string): Promise<void>;
  discardPartial(digest: string): Promise<void>;
  disk: { translate(err: unknown, what: string, bytesNeeded?: number): unknown };
}

/**
 * What the caller that starts a fill decides (sync: windows, caps, the bandwidth limit; the proxy:
 * admission, fast failure). Everything else of a fill is the same for every caller.
 */
export interface FillPolicy {
  /** Requests in a row that add no byte before the fill fails (0: a cut body is never resumed). */
  attempts: number;
  /** Pause before the n-th request in a row without progress (n >= 1). */
  backoffMs(failures: number): number;
  /** A failure of the very first request is retried (sync) rather than failing the fill at once (proxy: a fast 404). */
  retryFirst: boolean;
  /** Longest time without a new byte, across resumes, before the fill fails (undefined: no bound of its own). */
  silenceMs?: number | undefined;
  /** Make progress durable every this many bytes. */
  checkpointBytes: number;
  /** A partial of the pull-through cache (not of a desired image). */
  cache?: boolean | undefined;
  /** Errors another attempt cannot fix (disk full, paused, not found). */
  permanent(err: unknown): boolean;
  /** Once the size is known, before a byte is written: refuse (throw) or reserve; returns the release. */
  admit?(size: number, kept: number): Promise<() => void>;
  /** Before each request: a reason to hold (window closed, cap reached). */
  held?(phase: 'start' | 'stream'): Error | undefined;
  /** Before each chunk is written (the bandwidth limit; not for peers at the site). */
  beforeChunk?(bytes: number, origin: BlobOrigin, signal: AbortSignal): Promise<void>;
  /** Each resumed request after a cut. */
  onResume?(): void;
  /** After the commit (the proxy records the blob as cached). */
  onCommitted?(size: number): Promise<void>;
}

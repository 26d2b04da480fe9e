import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { SatelliteError } from '../lib/errors.ts';
import { UpstreamErrorCode, upstreamDetail } from './errors.ts';
import { isRetryableNetworkCode } from './network-errors.ts';
import { backoffMs } from './retry-after.ts';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  /** A longer Retry-After is not waited for: the error goes to the caller with retryAfterMs. */
  maxRetryAfterMs: number;
  log: Logger;
}

const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);

/**
 * How long to wait before attempt `attempt + 1`, or undefined to give up: 429/5xx honour
 * Retry-After (up to the cap) or back off; broken connections back off with jitter.
 */
export function retryDelay(err: unknown, attempt: number, policy: Omit<RetryPolicy, 'log'>): number | undefined {
  if (attempt >= policy.retries || !(err instanceof SatelliteError)) return undefined;
  const { status, errno, retryAfterMs } = upstreamDetail(err);
  const cap = policy.maxRetryAfterMs;
  if (status !== undefined && RETRY_STATUSES.has(status)) {
    // Waiting longer than allowed would stall the sync job: fail now, carrying retryAfterMs.
    if (retryAfterMs !== undefined) return retryAfterMs <= cap ? retryAfterMs : undefined;
    return Math.min(cap, backoffMs(attempt));
  }
  if (err.code === UpstreamErrorCode.unreachable && isRetryableNetworkCode(errno)) return Math.min(cap, backoffMs(attempt));
  return undefined;
}

/** Runs a small idempotent request (manifest, /v2/, token), retrying per retryDelay; aborts stop the wait. */
export async function withRetries<T>(policy: RetryPolicy, what: string, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (signal?.aborted) throw err;
      const wait = retryDelay(err, attempt, policy);
      if (wait === undefined) throw err;
      const { status, errno, retryAfterMs } = upstreamDetail(err);
      policy.log.info({ what, status, errno, retryAfterMs, waitMs: wait, attempt: attempt + 1 }, 'retrying upstream request');
      await sleep(wait, undefined, signal ? { signal } : {});
    }
  }
}

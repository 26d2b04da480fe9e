import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { FetchErrorCode, fetchError } from '../fetch/index.ts';
import type { ProxyUpstream } from './ports.ts';

/** How a fill resumes an upstream body that was cut (connection reset, early end, idle timeout). */
export interface ResumePolicy {
  /** Resume requests in a row that add no byte before the fill fails (0: never resume). */
  attempts: number;
  /**
   * Longest time without a new byte in the file, across resumes, before the fill fails: one idle
   * timeout plus one first-byte timeout, so a device never waits longer on a dead link than on a
   * single stalled fetch followed by a fresh request.
   */
  silenceMs: number;
  /** Called for each resumed upstream response (the status counter). */
  onResume?: (() => void) | undefined;
}

/** Without a policy (library use, tests): never resume, as before. */
export const NO_RESUME: ResumePolicy = { attempts: 0, silenceMs: 0 };

/** Pause before the n-th resume attempt in a row without progress (1-based): 100 ms doubling, at most 2 s. */
export function resumeBackoffMs(attempt: number): number {
  return Math.min(100 * 2 ** Math.max(0, attempt - 1), 2000);
}

/**
 * A signal that aborts with `parent` or after `ms`. answered() stops the timer: call it as soon as
 * the response headers are in, so the deadline bounds the request and never the body that follows;
 * close() unlinks it from `parent` once the body is over.
 */
export function deadlineSignal(parent: AbortSignal, ms: number): { signal: AbortSignal; answered(): void; close(): void } {
  const ctl = new AbortController();
  const onAbort = () => ctl.abort(parent.reason);
  if (parent.aborted) ctl.abort(parent.reason);
  else parent.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => ctl.abort(new Error(`no answer within ${ms} ms`)), Math.max(0, ms));
  return {
    signal: ctl.signal,
    answered: () => clearTimeout(timer),
    close: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', onAbort);
    },
  };
}

/** What a resume needs to know about the fill. */
export interface ResumeTarget {
  upstream: ProxyUpstream;
  repo: string;
  digest: string;
  /** Bytes in the file now (the offset asked for). */
  written: number;
  size: number | undefined;
  /** The fill's own signal (satellite shutdown). */
  signal: AbortSignal;
  log: Logger;
}

export type UpstreamBlob = Awaited<ReturnType<ProxyUpstream['fetchBlob']>>;

/**
 * The resume bookkeeping of one fill: requests in a row that added no byte, and when the file
 * last grew. request() asks the upstream again from `written` until it answers, within the
 * policy's bounds; the caller checks where the answer starts.
 */
export class ResumeBudget {
  readonly policy: ResumePolicy;
  #stuck = 0;
  #stuckAt = -1;
  #grewAt = Date.now();

  constructor(policy: ResumePolicy) {
    this.policy = policy;
  }

  /** The file grew (called per chunk). */
  grew(): void {
    this.#grewAt = Date.now();
  }

  /** The file started over: its length no longer means progress. */
  restarted(): void {
    this.#stuckAt = 0;
  }

  async request(to: ResumeTarget, cause: Error): Promise<{ res: UpstreamBlob; close: () => void }> {
    const { attempts, silenceMs } = this.policy;
    if (attempts === 0) throw cause;
    if (to.written !== this.#stuckAt) {
      this.#stuck = 0;
      this.#stuckAt = to.written;
    }
    let last = cause;
    const giveUp = (why: string) => fetchError(FetchErrorCode.resumeFailed, `upstream cut ${to.digest} at byte ${to.written}${to.size === undefined ? '' : ` of ${to.size}`}; ${why}: ${last.message}`, { cause: last.message });
    for (;;) {
      if (++this.#stuck > attempts) throw giveUp(`${attempts} resume attempts in a row without progress`);
      await sleep(resumeBackoffMs(this.#stuck), undefined, { signal: to.signal });
      const left = this.#grewAt + silenceMs - Date.now();
      if (left <= 0) throw giveUp(`nothing received for ${silenceMs} ms`);
      to.log.info({ digest: to.digest, bytes: to.written, attempt: this.#stuck, err: last.message }, 'upstream cut mid-blob; resuming');
      const deadline = deadlineSignal(to.signal, left);
      try {
        const res = await to.upstream.fetchBlob(to.repo, to.digest, { signal: deadline.signal, ...(to.written > 0 ? { offset: to.written } : {}) });
        deadline.answered();
        return { res, close: deadline.close };
      } catch (err) {
        deadline.close();
        if (to.signal.aborted) throw err;
        last = err as Error;
      }
    }
  }
}

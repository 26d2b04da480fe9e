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

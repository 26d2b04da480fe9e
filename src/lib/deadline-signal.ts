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

// The console's live updates: one EventSource on GET /api/v1/live (Server-Sent Events, session
// cookie) per page, shared by the views. The server says which satellites changed (ids, at most
// one message a second) and the fleet counts; a view refetches only when what it shows changed.
// No polling loop: without changes nothing is requested.
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { currentSession } from './api.js';

const LIVE_PATH = '/api/v1/live';
/** After the stream failed for another reason than the browser's own reconnect (e.g. 503). */
const RETRY_MS = 10_000;

const listeners = new Set();
let source = null;
let retryTimer = null;
let helloSeen = false;
/** For the status line and tests: connected, messages received. */
export const liveStatus = { connected: false, messages: 0 };

/** The last few messages with when they came (performance.now()): for a view that subscribes late. */
const recent = [];
const RECENT_KEPT = 20;
export function recentMessages() {
  return recent;
}

function emit(msg) {
  liveStatus.messages++;
  recent.push({ at: performance.now(), msg });
  if (recent.length > RECENT_KEPT) recent.shift();
  for (const fn of [...listeners]) fn(msg);
}

function connect() {
  if (source || retryTimer || listeners.size === 0) return;
  const es = new EventSource(LIVE_PATH);
  source = es;
  es.addEventListener('hello', () => {
    liveStatus.connected = true;
    // A reconnect may have missed changes: every view refetches.
    if (helloSeen) emit({ ids: [], more: true, config: true, counts: null });
    helloSeen = true;
  });
  es.addEventListener('changes', (e) => emit(JSON.parse(e.data)));
  es.addEventListener('end', () => {
    // Logged out, session expired, or Ground Control stopping: see which.
    stop();
    recheck();
  });
  es.onerror = () => {
    liveStatus.connected = false;
    // CONNECTING: the browser retries by itself. CLOSED: refused (401, 503): find out why.
    if (es.readyState === EventSource.CLOSED) {
      stop();
      recheck();
    }
  };
}

function stop() {
  source?.close();
  source = null;
  liveStatus.connected = false;
}

/** A 401 sends the app to its login form (api.js); otherwise try again later. */
function recheck() {
  currentSession()
    .catch(() => null)
    .then((s) => {
      if (!s) {
        dispatchEvent(new Event('gc-unauthorized'));
        return;
      }
      retryTimer = setTimeout(() => {
        retryTimer = null;
        connect();
      }, RETRY_MS);
    });
}

/** Calls fn(message) for every live message while subscribed; returns the unsubscribe. */
export function subscribe(fn) {
  listeners.add(fn);
  connect();
  return () => {
    listeners.delete(fn);
    if (listeners.size === 0) {
      stop();
      clearTimeout(retryTimer);
      retryTimer = null;
      helloSeen = false;
    }
  };
}

/** Not relevant unless something changed through the API (or the stream reconnected). */
const onlyConfig = () => false;

/**
 * Loads now, then again whenever a live message is relevant to what was loaded
 * (`relevant(message, data)`) or says the configuration changed; while the page is hidden the
 * reload waits until it is shown. Returns [data, error, reload].
 */
export function useLive(load, deps, relevant = onlyConfig) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const seq = useRef(0);
  const current = useRef(null);
  const rel = useRef(relevant);
  rel.current = relevant;
  const run = useCallback(async () => {
    const mine = ++seq.current;
    try {
      const d = await load();
      if (mine === seq.current) {
        current.current = d;
        setData(d);
        setError(null);
      }
    } catch (err) {
      if (mine === seq.current) setError(err);
    }
  }, deps);
  useEffect(() => {
    let stale = false;
    run();
    const onVisible = () => {
      if (!document.hidden && stale) {
        stale = false;
        run();
      }
    };
    document.addEventListener('visibilitychange', onVisible);
    const off = subscribe((msg) => {
      if (!(msg.more || msg.config || rel.current(msg, current.current))) return;
      if (document.hidden) stale = true;
      else run();
    });
    return () => {
      off();
      document.removeEventListener('visibilitychange', onVisible);
    };
  }, [run]);
  return [data, error, run];
}

/** True when a message names one of these satellite ids. */
export function mentions(msg, ids) {
  if (!msg.ids || msg.ids.length === 0) return false;
  const set = ids instanceof Set ? ids : new Set(ids);
  return msg.ids.some((id) => set.has(id));
}

/** True when the message's fleet counts differ from these. */
export function countsDiffer(msg, counts) {
  if (!msg.counts || !counts) return false;
  return Object.keys(msg.counts).some((k) => msg.counts[k] !== counts[k]);
}

/** Re-renders every `ms` while the page is visible (relative times like "2m ago"), without a request. */
export function useTick(ms) {
  const [, setN] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => {
      if (!document.hidden) setN((n) => n + 1);
    }, ms);
    return () => clearInterval(timer);
  }, [ms]);
}

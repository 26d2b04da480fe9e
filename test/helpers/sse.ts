import type { Teardown } from './cleanup.ts';
import { defer } from './cleanup.ts';

export interface SseEvent {
  event: string;
  data: string;
}

/** A Server-Sent Events stream read with fetch: events and comment lines as they arrive. */
export interface SseStream {
  status: number;
  headers: Headers;
  /** Parsed events so far (comments as event ':' with the comment text in data). */
  events: SseEvent[];
  /** Resolves with the first event (new or already received) matching, or rejects after timeoutMs. */
  next(match: (e: SseEvent) => boolean, timeoutMs?: number, what?: string): Promise<SseEvent>;
  /** Resolves when the server ended the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Opens GET url as an event stream; closed after the test. A non-200 answer is returned without events. */
export async function openSse(t: Teardown, url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const ac = new AbortController();
  defer(t, () => ac.abort());
  const res = await fetch(url, { headers: { Accept: 'text/event-stream', ...headers }, signal: ac.signal });
  const events: SseEvent[] = [];
  const waiters = new Set<() => void>();
  let resolveEnded!: () => void;
  const ended = new Promise<void>((r) => (resolveEnded = r));
  const stream: SseStream = {
    status: res.status,
    headers: res.headers,
    events,
    ended,
    close: () => ac.abort(),
    next(match, timeoutMs = 10_000, what = 'an event') {
      const found = events.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(events.map((e) => e.event))}`));
        }, timeoutMs);
        const check = () => {
          const e = events.find(match);
          if (!e) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(e);
        };
        waiters.add(check);
      });
    },
  };
  if (res.status !== 200 || !res.body) {
    await res.text().catch(() => '');
    resolveEnded();
    return stream;
  }
  void (async () => {
    let buf = '';
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let cut: number;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const ev: SseEvent = { event: 'message', data: '' };
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) ev.event = ':';
            if (line.startsWith(':')) data.push(line.slice(1).trim());
            else if (line.startsWith('event: ')) ev.event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          ev.data = data.join('\n');
          events.push(ev);
          for (const w of [...waiters]) w();
        }
      }
    } catch {
      // aborted by the test or cut by the server
    } finally {
      resolveEnded();
    }
  })();
  return stream;
}

import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defer, type Teardown } from './cleanup.ts';

/** One blob GET that went through the relay. */
export interface RelayedBlob {
  digest: string;
  /** Where the request asked to start (its Range, 0 without one). */
  start: number;
  /** The response status the target gave. */
  status: number;
  /** Body bytes the relay wrote to the client (flushed before any cut). */
  sent: number;
  /** The relay cut this response after `sent` bytes. */
  cut: boolean;
}

export interface CountingRelay {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT */
  host: string;
  /** Every blob GET so far, in the order the requests arrived. */
  blobs(): RelayedBlob[];
  /** Blob body bytes written to clients, all requests. */
  blobBytes(): number;
  cuts(): number;
  /** Stops cutting (the next responses go through whole). */
  stopCutting(): void;
  stop(): Promise<void>;
}

// A registry blob GET, or a peer satellite's (src/peers/wire.ts: /_satellite/peer/blobs/<digest>).
const BLOB_PATH = /^(?:\/v2\/.+|\/_satellite\/peer)\/blobs\/(sha256:[0-9a-f]{64})$/;

/**
 * An HTTP relay in front of a loopback registry (or a peer satellite) that counts the body bytes of every blob GET it
 * forwards and cuts blob responses after budgets taken in turn from `cutAfter` (odd numbers make
 * the cuts land anywhere in a read). A cut writes exactly the budget, waits until it is flushed to
 * the socket, then ends the connection (FIN, no reset): the client has every counted byte, so a
 * client that keeps them asks the next Range from exactly start + sent.
 */
export async function startCountingRelay(t: Teardown, opts: { target: string; cutAfter: number[] }): Promise<CountingRelay> {
  const idx = opts.target.lastIndexOf(':');
  const host = opts.target.slice(0, idx);
  const port = Number(opts.target.slice(idx + 1));
  if (host !== '127.0.0.1' && host !== 'localhost') throw new Error(`counting relay target ${opts.target} is not loopback`);
  const seen: RelayedBlob[] = [];
  let cutting = true;
  let next = 0;
  let cuts = 0;
  let total = 0;

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const m = req.method === 'GET' ? BLOB_PATH.exec((req.url ?? '').split('?')[0] ?? '') : null;
    const out = request({ host, port, method: req.method, path: req.url, headers: req.headers, agent: false }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (!m || (up.statusCode !== 200 && up.statusCode !== 206)) {
        up.pipe(res);
        return;
      }
      const range = /^bytes=(\d+)-/.exec(String(req.headers.range ?? ''));
      const rec: RelayedBlob = { digest: m[1]!, start: range ? Number(range[1]) : 0, status: up.statusCode, sent: 0, cut: false };
      seen.push(rec);
      const budget = cutting && opts.cutAfter.length > 0 ? opts.cutAfter[next++ % opts.cutAfter.length]! : Infinity;
      up.on('data', (chunk: Buffer) => {
        if (rec.cut) return;
        if (rec.sent + chunk.length >= budget && cutting) {
          const part = chunk.subarray(0, budget - rec.sent);
          rec.sent += part.length;
          total += part.length;
          rec.cut = true;
          cuts++;
          up.destroy();
          const socket = res.socket;
          res.write(part, () => {
            socket?.end();
            setTimeout(() => socket?.destroy(), 200).unref();
          });
          return;
        }
        rec.sent += chunk.length;
        total += chunk.length;
        if (!res.write(chunk)) up.pause();
      });
      res.on('drain', () => up.resume());
      up.on('end', () => {
        if (!rec.cut) res.end();
      });
      up.on('error', () => res.destroy());
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  };

  const server = createServer(handle);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port: own } = server.address() as AddressInfo;
  const stop = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  defer(t, stop);
  return {
    url: `http://127.0.0.1:${own}`,
    host: `127.0.0.1:${own}`,
    blobs: () => seen.map((b) => ({ ...b })),
    blobBytes: () => total,
    cuts: () => cuts,
    stopCutting: () => {
      cutting = false;
    },
    stop,
  };
}

/**
 * The bytes-before-a-cut check: for each digest, every request after a cut starts exactly where
 * the cut one started plus what it was sent. Returns the first break, or undefined.
 */
export function firstLostBytes(blobs: RelayedBlob[], digest: string): string | undefined {
  const gets = blobs.filter((b) => b.digest === digest);
  for (let i = 1; i < gets.length; i++) {
    const prev = gets[i - 1]!;
    const cur = gets[i]!;
    if (!prev.cut) continue;
    const want = prev.start + prev.sent;
    if (cur.start !== want) return `request ${i} for ${digest} asked from byte ${cur.start}; ${want} had been sent (${want - cur.start} bytes received before the cut were not kept)`;
  }
  return undefined;
}

/**
 * The same guarantee across relays (a blob taken partly from a peer, partly from the upstream):
 * the responses for `digest`, ordered by where they start, tile [0, size) exactly — no byte sent
 * twice, none missing. Returns the first break, or undefined.
 */
export function tilingBreak(blobs: RelayedBlob[], digest: string, size: number): string | undefined {
  const gets = blobs.filter((b) => b.digest === digest).sort((a, b) => a.start - b.start);
  let at = 0;
  for (const g of gets) {
    if (g.start !== at) return `a request for ${digest} asked from byte ${g.start}; ${at} bytes had been sent (${at - g.start} bytes sent twice, or never)`;
    at += g.sent;
  }
  return at === size ? undefined : `${at} of the ${size} bytes of ${digest} were sent`;
}

import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { defer, type Teardown } from './cleanup.ts';

export interface FaultProxyOptions {
  /** host:port to forward to; must be loopback (tests keep every packet on 127.0.0.1). */
  target: string;
  /** Cut (destroy both sides of) a connection once it has forwarded this many bytes target->client. */
  cutEveryBytes?: number;
  /** Invert the byte at this position of every connection's target->client stream (0-based, headers included). */
  flipByteAt?: number;
  /**
   * WAN emulation (there is no netem here): every byte, each direction, is delivered this many ms
   * after it arrived — pipelined, so it adds latency, not a throughput cap. RTT = 2 × delayMs.
   */
  delayMs?: number;
  /** One rate budget (bytes/s) shared by the target->client direction of all connections. */
  rateBytesPerSec?: number;
}

/** One HTTP/1.1 request seen going to the target (bodiless requests: GET, HEAD). */
export interface SeenRequest {
  method: string;
  path: string;
  /** Which accepted connection (1-based) carried it. */
  connection: number;
  /** It carried If-None-Match (a conditional request). */
  conditional: boolean;
  /** Requests (by path) awaiting their response on all connections when this one went out, itself included. */
  inFlight: string[];
}

/**
 * How pause() takes the link down: 'reset' destroys every connection and resets new ones at once
 * (the client sees a reset or "other side closed"); 'blackhole' also drops the existing ones but
 * accepts new ones and never answers (the client's connect succeeds and its header timeout fires).
 */
export type PauseMode = 'reset' | 'blackhole';

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  url: string;
  /** 127.0.0.1:PORT */
  host: string;
  port: number;
  /** Bytes forwarded target->client, all connections. */
  bytesFromTarget(): number;
  /** Bytes forwarded client->target, all connections. */
  bytesFromClient(): number;
  /** Connections accepted so far. */
  connections(): number;
  /** Requests seen so far (parsed from the client->target stream; fine for bodiless GET/HEAD). */
  requests(): SeenRequest[];
  /** Forgets the requests seen so far. */
  clearRequests(): void;
  /** Connections cut by cutEveryBytes so far. */
  cuts(): number;
  setCutEveryBytes(n: number | undefined): void;
  setFlipByteAt(n: number | undefined): void;
  /** Drops every connection and refuses new ones until resume() (see PauseMode). */
  pause(mode?: PauseMode): void;
  resume(): void;
  stop(): Promise<void>;
}

/** Bytes the emulated link holds per direction of a connection before the sender is paused. */
const WINDOW_BYTES = 8 * 1024 * 1024;

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

/**
 * A TCP proxy on a free 127.0.0.1 port that breaks the target->client direction on purpose:
 * cuts connections after N bytes, flips a byte, or goes dark. Settings may change at run time and
 * apply to live connections from their next chunk. Stopped after the test.
 */
export async function startFaultProxy(t: Teardown, opts: FaultProxyOptions): Promise<FaultProxy> {
  const idx = opts.target.lastIndexOf(':');
  const targetHost = opts.target.slice(0, idx);
  const targetPort = Number(opts.target.slice(idx + 1));
  if (!LOOPBACK.has(targetHost) || !Number.isInteger(targetPort)) {
    throw new Error(`fault proxy target ${opts.target} is not a loopback host:port`);
  }
  let cutEveryBytes = opts.cutEveryBytes;
  let flipByteAt = opts.flipByteAt;
  const delayMs = opts.delayMs ?? 0;
  const rate = opts.rateBytesPerSec;
  /** When the shared target->client link is free again (ms, performance.now()). */
  let linkFreeAt = 0;
  let seen: SeenRequest[] = [];
  /** Per connection: the path of a request sent and not yet answered. */
  const pending = new Map<number, string>();
  let paused: PauseMode | undefined;
  let fromTarget = 0;
  let fromClient = 0;
  let accepted = 0;
  let cuts = 0;
  const live = new Set<Socket>();

  const track = (socket: Socket) => {
    live.add(socket);
    socket.once('close', () => live.delete(socket));
    // A destroyed peer's error is expected here; an unhandled one would crash the test process.
    socket.on('error', () => {});
  };

  /**
   * Delivers `chunk` to `to` after the emulated link's delay (and the shared rate, target->client),
   * in order per direction; `then` runs once it is written.
   */
  const lane = () => {
    let lastAt = 0;
    let queued = 0;
    // One FIFO and one timer per lane: separate timers per chunk may fire out of order.
    const fifo: Array<{ at: number; to: Socket; from: Socket; chunk: Buffer | null; then: (() => void) | undefined }> = [];
    let timer: NodeJS.Timeout | undefined;
    const pump = () => {
      timer = undefined;
      const now = performance.now();
      while (fifo.length > 0 && fifo[0]!.at <= now + 0.5) {
        const { to, from, chunk, then } = fifo.shift()!;
        const size = chunk?.length ?? 0;
        queued -= size;
        if (queued <= WINDOW_BYTES) from.resume();
        if (to.destroyed) continue;
        if (chunk === null) to.end();
        else to.write(chunk, then);
      }
      if (fifo.length > 0) timer = setTimeout(pump, Math.max(0, fifo[0]!.at - now));
    };
    const send = (to: Socket, from: Socket, chunk: Buffer | null, shared: boolean, then?: () => void) => {
      if (delayMs === 0 && !(shared && rate)) {
        if (chunk === null) to.end();
        else if (!to.write(chunk, then)) from.pause();
        return;
      }
      const now = performance.now();
      let at = now;
      if (chunk && shared && rate) {
        const start = Math.max(now, linkFreeAt);
        linkFreeAt = start + (chunk.length / rate) * 1000;
        at = linkFreeAt;
      }
      at = Math.max(at + delayMs, lastAt);
      lastAt = at;
      queued += chunk?.length ?? 0;
      // A bounded window per direction: the sender waits, as over a real link.
      if (queued > WINDOW_BYTES) from.pause();
      fifo.push({ at, to, from, chunk, then });
      timer ??= setTimeout(pump, Math.max(0, fifo[0]!.at - now));
    };
    /** ms until what this lane holds is delivered (0 when nothing waits). */
    const flushedIn = () => Math.max(0, lastAt - performance.now());
    return Object.assign(send, { flushedIn });
  };

  const server = createServer({ allowHalfOpen: true }, (client) => {
    const id = ++accepted;
    track(client);
    if (paused === 'reset') {
      client.resetAndDestroy();
      return;
    }
    if (paused === 'blackhole') {
      client.pause();
      return;
    }
    const upstream = connect({ host: targetHost, port: targetPort, allowHalfOpen: true });
    track(upstream);
    const kill = () => {
      client.destroy();
      upstream.destroy();
    };
    const up = lane();
    const down = lane();
    // One side gone: the other follows once what the emulated link still holds was delivered.
    client.once('close', () => setTimeout(kill, up.flushedIn()));
    upstream.once('close', () => setTimeout(kill, down.flushedIn()));

    let head = '';
    client.on('data', (chunk: Buffer) => {
      fromClient += chunk.length;
      head += chunk.toString('latin1');
      for (let end = head.indexOf('\r\n\r\n'); end >= 0; end = head.indexOf('\r\n\r\n')) {
        const block = head.slice(0, end);
        const [method = '', path = ''] = block.slice(0, block.indexOf('\r\n')).split(' ');
        head = head.slice(end + 4);
        pending.set(id, path);
        seen.push({ method, path, connection: id, conditional: /\r\nif-none-match:/i.test(block), inFlight: [...pending.values()] });
      }
      up(upstream, client, chunk, false);
    });
    upstream.on('drain', () => client.resume());
    client.once('end', () => up(upstream, client, null, false));

    let position = 0; // this connection's target->client stream position
    upstream.on('data', (chunk: Buffer) => {
      let out = chunk;
      let cut = false;
      if (cutEveryBytes !== undefined && position + out.length >= cutEveryBytes) {
        out = out.subarray(0, Math.max(0, cutEveryBytes - position));
        cut = true;
      }
      if (flipByteAt !== undefined && flipByteAt >= position && flipByteAt < position + out.length) {
        out = Buffer.from(out); // never modify a buffer the socket may reuse
        out[flipByteAt - position]! ^= 0xff;
      }
      position += out.length;
      fromTarget += out.length;
      pending.delete(id);
      if (cut) {
        cuts++;
        // Write what fits the budget, then drop both sides once it is flushed.
        down(client, upstream, out, true, () => kill());
        upstream.pause();
        setTimeout(kill, 50 + delayMs).unref();
        return;
      }
      down(client, upstream, out, true);
    });
    client.on('drain', () => upstream.resume());
    upstream.once('end', () => down(client, upstream, null, true));
    client.once('close', () => pending.delete(id));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;

  const dropAll = () => {
    for (const socket of live) socket.destroy();
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      dropAll();
      server.close(() => resolve());
    });
  defer(t, stop);

  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    port,
    bytesFromTarget: () => fromTarget,
    bytesFromClient: () => fromClient,
    connections: () => accepted,
    requests: () => [...seen],
    clearRequests: () => {
      seen = [];
    },
    cuts: () => cuts,
    setCutEveryBytes: (n) => {
      cutEveryBytes = n;
    },
    setFlipByteAt: (n) => {
      flipByteAt = n;
    },
    pause: (mode = 'reset') => {
      paused = mode;
      dropAll();
    },
    resume: () => {
      // Blackholed connections never got a target: drop them so their clients fail fast.
      if (paused === 'blackhole') dropAll();
      paused = undefined;
    },
    stop,
  };
}

import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { isSatelliteError } from '../../lib/errors.ts';
import { clientAddress, RejectionLog } from '../../lib/rejection-log.ts';
import type { BrokerLimitsConfig } from '../config.ts';
import { PacketLimit } from './packet-limit.ts';

/** A connection the guard let in: aedes reads `stream`; call loggedIn() once its CONNACK accepted it. */
export interface GuardedConnection {
  stream: Duplex;
  loggedIn(): void;
}

/**
 * What a client may hold on the embedded broker before it has logged in. Anyone who reaches the
 * port can open connections, so until the CONNECT is accepted a connection is "pending" and held
 * to: a small packet size (a CONNECT is tiny; aedes would buffer any declared length), a deadline,
 * and caps on pending connections per address and in all. Over a cap, a new connection is closed
 * before a byte is read. Logged-in connections only count towards maxConnections (satellites of a
 * site may share one address behind NAT). Refusals are logged as one summary line per interval.
 */
export class ConnectionGuard {
  readonly #limits: BrokerLimitsConfig;
  readonly #maxPacketBytes: number;
  readonly #rejections: RejectionLog;
  #open = 0;
  #pending = 0;
  readonly #pendingByAddress = new Map<string, number>();

  constructor(opts: { limits: BrokerLimitsConfig; maxPacketBytes: number; log: Logger }) {
    this.#limits = opts.limits;
    this.#maxPacketBytes = opts.maxPacketBytes;
    this.#rejections = new RejectionLog({ log: opts.log, msg: 'mqtt connections refused or dropped', intervalMs: opts.limits.logIntervalSeconds * 1000 });
  }

  /** Counts of open and pending connections (for tests and status). */
  get counts(): { open: number; pending: number } {
    return { open: this.#open, pending: this.#pending };
  }

  /** Lets a new socket in (wrapped in the packet limit) or closes it at once and answers undefined. */
  admit(socket: Socket): GuardedConnection | undefined {
    const address = clientAddress(socket.remoteAddress);
    const l = this.#limits;
    const refusal =
      this.#open >= l.maxConnections
        ? 'MAX_CONNECTIONS'
        : this.#pending >= l.maxPendingConnections
          ? 'MAX_PENDING_CONNECTIONS'
          : (this.#pendingByAddress.get(address) ?? 0) >= l.maxPendingPerAddress
            ? 'MAX_PENDING_PER_ADDRESS'
            : undefined;
    if (refusal) {
      this.#rejections.note(address, refusal);
      socket.on('error', () => undefined);
      socket.destroy();
      return undefined;
    }

    this.#open++;
    let pending = true;
    this.#setPending(address, +1);
    const endPending = () => {
      if (!pending) return;
      pending = false;
      clearTimeout(deadline);
      this.#setPending(address, -1);
    };
    const drop = (reason: string) => {
      this.#rejections.note(address, reason);
      socket.destroy();
    };
    const deadline = setTimeout(() => drop('CONNECT_TIMEOUT'), l.connectTimeoutSeconds * 1000);
    deadline.unref();

    // Bytes in go through the size check; bytes out go straight to the socket.
    const limit = new PacketLimit(l.maxConnectBytes);
    socket.pipe(limit);
    const stream = Duplex.from({ readable: limit, writable: socket });
    limit.on('error', (err) => {
      // PACKET_TOO_LARGE or PACKET_MALFORMED; other errors are the socket going away.
      if (isSatelliteError(err)) drop(err.code);
      socket.destroy();
      stream.destroy();
    });
    socket.on('error', () => stream.destroy());
    socket.once('close', () => {
      this.#open--;
      endPending();
      stream.destroy();
    });
    return {
      stream,
      loggedIn: () => {
        endPending();
        limit.maxBytes = this.#maxPacketBytes;
      },
    };
  }

  /** Logs the last summary. */
  close(): void {
    this.#rejections.flush();
  }

  #setPending(address: string, delta: number): void {
    this.#pending += delta;
    const n = (this.#pendingByAddress.get(address) ?? 0) + delta;
    if (n > 0) this.#pendingByAddress.set(address, n);
    else this.#pendingByAddress.delete(address);
  }
}

import type { Logger } from 'pino';

/** How many addresses one summary line names (the busiest first); the rest are only counted. */
const MAX_NAMED_ADDRESSES = 20;

/**
 * Counts refusals (wrong tokens, dropped connections) by remote address and reason, and logs them as
 * one warn line per interval instead of one line each: an attacker cannot flood the journal, and an
 * operator still sees how many, why, and from where.
 */
export class RejectionLog {
  readonly #log: Logger;
  readonly #msg: string;
  readonly #intervalMs: number;
  #count = 0;
  #byAddress = new Map<string, number>();
  #byReason = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: { log: Logger; msg: string; intervalMs: number }) {
    this.#log = opts.log;
    this.#msg = opts.msg;
    this.#intervalMs = opts.intervalMs;
  }

  note(address: string, reason: string): void {
    this.#count++;
    this.#byAddress.set(address, (this.#byAddress.get(address) ?? 0) + 1);
    this.#byReason.set(reason, (this.#byReason.get(reason) ?? 0) + 1);
    if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  /** Logs what was counted since the last line (nothing when nothing was). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#count === 0) return;
    const busiest = [...this.#byAddress].sort((a, b) => b[1] - a[1]);
    this.#log.warn(
      {
        count: this.#count,
        reasons: Object.fromEntries(this.#byReason),
        addresses: Object.fromEntries(busiest.slice(0, MAX_NAMED_ADDRESSES)),
        otherAddresses: Math.max(0, busiest.length - MAX_NAMED_ADDRESSES),
        intervalSeconds: this.#intervalMs / 1000,
      },
      this.#msg,
    );
    this.#count = 0;
    this.#byAddress = new Map();
    this.#byReason = new Map();
  }
}

/** The IPv4 address inside an IPv4-mapped IPv6 one ("::ffff:10.0.0.1" -> "10.0.0.1"), so both count as one client. */
export function clientAddress(remote: string | undefined): string {
  if (!remote) return 'unknown';
  return remote.startsWith('::ffff:') && remote.includes('.') ? remote.slice(7) : remote;
}

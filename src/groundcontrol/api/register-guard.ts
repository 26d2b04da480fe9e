import type { Logger } from 'pino';
import { RejectionLog } from '../../lib/rejection-log.ts';
import type { RegisterLimitConfig } from '../config.ts';
import { gcError } from '../errors.ts';

interface Window {
  start: number;
  failures: number;
}

/**
 * Rate limit and log aggregation for POST /register, which needs no admin token. Only refusals
 * count: a successful registration consumes a token an admin issued, so successes are bounded by
 * the tokens; refusals are what anyone can produce without limit. An address past its budget gets
 * 429 with Retry-After until its window ends, without its token being looked at.
 */
export class RegisterGuard {
  readonly #cfg: RegisterLimitConfig;
  readonly #now: () => number;
  /** Insertion order = window start order, so the first key is the oldest. */
  readonly #windows = new Map<string, Window>();
  readonly #log: RejectionLog;

  constructor(opts: { config: RegisterLimitConfig; log: Logger; now?: () => number }) {
    this.#cfg = opts.config;
    this.#now = opts.now ?? Date.now;
    this.#log = new RejectionLog({ log: opts.log, msg: 'registrations refused', intervalMs: opts.config.logIntervalSeconds * 1000 });
  }

  /** Throws RATE_LIMITED (429, detail.retryAfterSeconds) while the address is over its budget. */
  check(address: string): void {
    const w = this.#current(address);
    if (!w || w.failures < this.#cfg.maxFailuresPerAddress) return;
    const retryAfterSeconds = Math.max(1, Math.ceil((w.start + this.#cfg.failureWindowSeconds * 1000 - this.#now()) / 1000));
    this.#log.note(address, 'RATE_LIMITED');
    throw gcError('RATE_LIMITED', `too many refused registrations from ${address}; retry in ${retryAfterSeconds} s`, { detail: { retryAfterSeconds } });
  }

  /** Counts a refused registration (unknown, used or expired token; invalid body). */
  failed(address: string, code: string): void {
    this.#log.note(address, code);
    let w = this.#current(address);
    if (!w) {
      if (this.#windows.size >= this.#cfg.maxTrackedAddresses) {
        const oldest = this.#windows.keys().next().value;
        if (oldest !== undefined) this.#windows.delete(oldest);
      }
      w = { start: this.#now(), failures: 0 };
      this.#windows.set(address, w);
    }
    w.failures++;
  }

  /** Logs the last summary. */
  close(): void {
    this.#log.flush();
  }

  #current(address: string): Window | undefined {
    const w = this.#windows.get(address);
    if (w && this.#now() - w.start >= this.#cfg.failureWindowSeconds * 1000) {
      this.#windows.delete(address);
      return undefined;
    }
    return w;
  }
}

/**
 * SIGTERM/SIGINT for the whole life of a service process, start-up included: one listener from
 * the first line of `serve` on, so there is no moment in which the default action (death with
 * the signal, no clean stop) applies. A signal during start-up aborts `signal`; `onStop` runs
 * with it as soon as the service is up, or at once if it came before. After the first signal the
 * listeners are removed: a second one gets the default action (the operator insists).
 */
export class StopSignals {
  readonly #controller = new AbortController();
  #received: NodeJS.Signals | undefined;
  #onStop: ((signal: NodeJS.Signals) => void) | undefined;
  readonly #handler = (signal: NodeJS.Signals) => {
    if (this.#received) return;
    this.#received = signal;
    process.off('SIGTERM', this.#handler);
    process.off('SIGINT', this.#handler);
    this.#controller.abort();
    this.#onStop?.(signal);
  };

  constructor() {
    process.on('SIGTERM', this.#handler);
    process.on('SIGINT', this.#handler);
  }

  /** Aborted by the first SIGTERM or SIGINT (cuts a start-up wait short). */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Runs `stop` on the first signal; on the next tick if it already came. */
  onStop(stop: (signal: NodeJS.Signals) => void): void {
    this.#onStop = stop;
    const received = this.#received;
    if (received) process.nextTick(stop, received);
  }
}

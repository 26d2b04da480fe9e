import { execFile } from 'node:child_process';
import type { Logger } from 'pino';

/** What the notifier needs from a logger (pino's Logger fits). */
type NotifyLog = Pick<Logger, 'warn' | 'debug'>;

export interface NotifierOptions {
  log: NotifyLog;
  /** Default process.env: reads NOTIFY_SOCKET and WATCHDOG_USEC. */
  env?: NodeJS.ProcessEnv;
  /** The helper that writes to the notify socket; default `systemd-notify` from PATH. */
  command?: string;
  /** While starting, extend systemd's start timeout by this much on every tick; default 30 s. */
  startExtendMs?: number;
}

/**
 * Returns why the process is not healthy, or undefined when it is. Called on the main event loop
 * before every watchdog ping: a failed check skips the ping, so systemd restarts us.
 */
export type LivenessCheck = () => string | undefined;

/**
 * sd_notify(3) for Node. Node has no unix datagram sockets and the npm bindings are native
 * addons (a problem for the arm64 tarball), so each message is handed to `systemd-notify`, which
 * ships with systemd itself. Since systemd 246 it waits until the manager has processed the
 * message (BARRIER=1), so the short-lived sender is still alive when systemd attributes it to the
 * unit; the unit needs NotifyAccess=all because the sender is our child, not the main process.
 *
 * A no-op when NOTIFY_SOCKET is unset (not under systemd, or Type=simple).
 */
export class SystemdNotifier {
  readonly enabled: boolean;
  /** Ping interval (WATCHDOG_USEC / 2), or undefined when systemd set no watchdog. */
  readonly watchdogIntervalMs: number | undefined;
  readonly #log: NotifyLog;
  readonly #env: NodeJS.ProcessEnv;
  readonly #command: string;
  readonly #startExtendMs: number;
  #queue: Promise<void> = Promise.resolve();
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;
  #state: 'starting' | 'ready' | 'stopping' = 'starting';
  #status = '';
  #warned = false;

  constructor(opts: NotifierOptions) {
    this.#log = opts.log;
    this.#env = opts.env ?? process.env;
    this.#command = opts.command ?? 'systemd-notify';
    this.#startExtendMs = opts.startExtendMs ?? 30_000;
    this.enabled = Boolean(this.#env.NOTIFY_SOCKET);
    const usec = Number(this.#env.WATCHDOG_USEC);
    this.watchdogIntervalMs = this.enabled && Number.isFinite(usec) && usec > 0 ? Math.max(50, Math.floor(usec / 2000)) : undefined;
  }

  /**
   * While start-up runs (a first boot may wait long for Ground Control), keep extending systemd's
   * start timeout from an event-loop timer: a start that hangs the loop still times out.
   */
  starting(status: string): void {
    if (!this.enabled || this.#state !== 'starting') return;
    this.#status = status;
    const tick = () => void this.send([`EXTEND_TIMEOUT_USEC=${this.#startExtendMs * 1000}`, `STATUS=${this.#status}`]);
    tick();
    clearInterval(this.#timer);
    this.#timer = setInterval(tick, Math.max(50, Math.floor(this.#startExtendMs / 3)));
    this.#timer.unref();
  }

  /**
   * READY=1 (with our PID as MAINPID, in case a wrapper script did not exec us), then watchdog
   * pings every WATCHDOG_USEC/2 while `check` passes. READY=1 is repeated with each ping: systemd
   * ignores repeats, and a lost first message cannot leave the unit starting forever.
   */
  ready(status: string, check: LivenessCheck = () => undefined, statusNow?: () => string): Promise<void> {
    if (!this.enabled || this.#state === 'stopping') return Promise.resolve();
    this.#state = 'ready';
    this.#status = status;
    clearInterval(this.#timer);
    this.#timer = undefined;
    const sent = this.send(['READY=1', `STATUS=${status}`]);
    const every = this.watchdogIntervalMs;
    if (every !== undefined) {
      this.#timer = setInterval(() => this.#ping(check, statusNow), every);
      this.#timer.unref();
    }
    return sent;
  }

  /** STATUS=text, shown by `systemctl status`. */
  status(text: string): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    this.#status = text;
    return this.send([`STATUS=${text}`]);
  }

  /** STOPPING=1: no more pings; systemd waits up to TimeoutStopSec for us to exit. */
  stopping(status = 'stopping'): Promise<void> {
    if (!this.enabled || this.#state === 'stopping') return Promise.resolve();
    this.#state = 'stopping';
    clearInterval(this.#timer);
    this.#timer = undefined;
    return this.send(['STOPPING=1', `STATUS=${status}`]);
  }

  /** Resolves once every message queued so far has been handed over. */
  flush(): Promise<void> {
    return this.#queue;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #ping(check: LivenessCheck, statusNow?: () => string): void {
    if (this.#state !== 'ready') return;
    // A helper still running means systemd (or the machine) is slow: do not pile up processes.
    if (this.#inFlight > 0) return;
    let reason: string | undefined;
    try {
      reason = check();
    } catch (err) {
      reason = (err as Error).message;
    }
    if (reason !== undefined) {
      this.#log.warn({ reason }, 'liveness check failed; withholding the watchdog ping');
      void this.send([`STATUS=unhealthy: ${reason}`]);
      return;
    }
    if (statusNow) this.#status = statusNow();
    void this.send(['READY=1', 'WATCHDOG=1', `STATUS=${this.#status}`]);
  }

  /** Queues one notification (lines in order); failures are logged, never thrown. */
  send(lines: string[]): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    this.#inFlight++;
    const run = () =>
      new Promise<void>((resolve) => {
        execFile(this.#command, [`--pid=${process.pid}`, ...lines], { timeout: 10_000, env: this.#env }, (err, _stdout, stderr) => {
          this.#inFlight--;
          if (err) {
            const log = this.#warned ? this.#log.debug.bind(this.#log) : this.#log.warn.bind(this.#log);
            this.#warned = true;
            log({ err: err.message, stderr: stderr.trim(), lines }, 'systemd-notify failed');
          }
          resolve();
        });
      });
    this.#queue = this.#queue.then(run);
    return this.#queue;
  }
}

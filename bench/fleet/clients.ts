import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { FromWorker, SimSatellite, Timing, ToWorker } from './ipc.ts';

const WORKER = join(import.meta.dirname, 'client-worker.ts');

export interface ConnectOutcome {
  connected: number;
  failed: number;
  retries: number;
  firstError: string | null;
  ms: number;
}

/**
 * The simulated satellites, spread round-robin over a few child processes (the 2 vCPUs are shared
 * with Ground Control and mosquitto; one process per core is enough for raw MQTT clients).
 */
export class SimFleet {
  readonly #workers: ChildProcess[] = [];
  readonly #waiting = new Map<ChildProcess, Array<(m: FromWorker) => boolean>>();
  /** generation -> workers that have published a state for all of their satellites */
  readonly #published = new Map<number, { count: number; lastAt: number; done: Array<(at: number) => void> }>();
  readonly errors: string[] = [];

  constructor(workers: number, log: (msg: string) => void) {
    for (let i = 0; i < workers; i++) {
      // 'advanced' serialization: Timing rows carry NaN, which JSON would turn into null.
      const child = fork(WORKER, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      this.#workers.push(child);
      this.#waiting.set(child, []);
      child.on('message', (m: FromWorker) => {
        if (m.op === 'error') {
          if (this.errors.length < 20) log(`client worker ${i}: ${m.message}`);
          this.errors.push(m.message);
          return;
        }
        if (m.op === 'published') return this.#onPublished(m.generation, m.at);
        const queue = this.#waiting.get(child)!;
        const idx = queue.findIndex((w) => w(m));
        if (idx >= 0) queue.splice(idx, 1);
      });
    }
  }

  get pids(): number[] {
    return this.#workers.map((w) => w.pid!);
  }

  #ask<T extends FromWorker['op']>(child: ChildProcess, msg: ToWorker, answer: T, timeoutMs: number): Promise<Extract<FromWorker, { op: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client worker ${child.pid}: no '${answer}' answer in ${timeoutMs} ms`)), timeoutMs);
      this.#waiting.get(child)!.push((m) => {
        if (m.op !== answer) return false;
        clearTimeout(timer);
        resolve(m as Extract<FromWorker, { op: T }>);
        return true;
      });
      child.send(msg);
    });
  }

  #onPublished(generation: number, at: number): void {
    const entry = this.#published.get(generation) ?? { count: 0, lastAt: 0, done: [] };
    entry.count++;
    entry.lastAt = Math.max(entry.lastAt, at);
    this.#published.set(generation, entry);
    if (entry.count === this.#workers.length) for (const fn of entry.done.splice(0)) fn(entry.lastAt);
  }

  /** Resolves with the time the last satellite published its acknowledgement of `generation`. */
  allPublished(generation: number): Promise<number> {
    const entry = this.#published.get(generation) ?? { count: 0, lastAt: 0, done: [] };
    this.#published.set(generation, entry);
    if (entry.count === this.#workers.length) return Promise.resolve(entry.lastAt);
    return new Promise((resolve) => entry.done.push(resolve));
  }

  /** Logs every satellite in (each retried until timeoutMs while mosquitto reloads its password file). */
  async connect(port: number, satellites: SimSatellite[], opts: { concurrency: number; timeoutMs: number; version: string }): Promise<ConnectOutcome> {
    const start = Date.now();
    const slices = this.#workers.map((_, i) => satellites.filter((__, j) => j % this.#workers.length === i));
    const perWorker = Math.max(1, Math.ceil(opts.concurrency / this.#workers.length));
    const answers = await Promise.all(
      this.#workers.map((w, i) =>
        this.#ask(w, { op: 'connect', port, satellites: slices[i]!, concurrency: perWorker, timeoutMs: opts.timeoutMs, version: opts.version }, 'connected', opts.timeoutMs + 30_000),
      ),
    );
    return {
      connected: answers.reduce((a, m) => a + m.connected, 0),
      failed: answers.reduce((a, m) => a + m.failed, 0),
      retries: answers.reduce((a, m) => a + m.retries, 0),
      firstError: answers.find((m) => m.firstError)?.firstError ?? null,
      ms: Date.now() - start,
    };
  }

  /** Every satellite's timings for one generation (order: by worker, then by satellite). */
  async collect(generation: number): Promise<Timing[]> {
    const answers = await Promise.all(this.#workers.map((w) => this.#ask(w, { op: 'collect', generation }, 'timings', 30_000)));
    return answers.flatMap((m) => m.timings);
  }

  /** Clean DISCONNECTs (no last wills), then the workers exit. */
  async close(): Promise<void> {
    await Promise.all(
      this.#workers.map(async (w) => {
        if (w.exitCode !== null || w.signalCode !== null) return;
        const exited = once(w, 'exit');
        try {
          if (w.connected) w.send({ op: 'close' } satisfies ToWorker);
        } catch {
          // already gone
        }
        const timer = setTimeout(() => w.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

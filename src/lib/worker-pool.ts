import { Worker } from 'node:worker_threads';
import { SatelliteError } from './errors.ts';

/** A job without its id (distributes over unions of message shapes). */
export type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/**
 * A fixed set of worker threads running one script, each taking one job at a time, with a bounded
 * queue: run() rejects with code BUSY at once when `maxQueue` jobs already wait. Messages carry an
 * `id`; replies echo it. A worker that dies is replaced and its job rejected.
 */
export class WorkerPool<Req extends { id: number }, Rep extends { id: number }> {
  readonly #url: URL;
  readonly #maxQueue: number;
  readonly #idle: Worker[] = [];
  readonly #queue: Array<{ msg: Req; resolve: (r: Rep) => void; reject: (e: unknown) => void }> = [];
  readonly #pending = new Map<Worker, { resolve: (r: Rep) => void; reject: (e: unknown) => void }>();
  #closed = false;
  #seq = 0;

  constructor(url: URL, opts: { size: number; maxQueue: number }) {
    this.#url = url;
    this.#maxQueue = opts.maxQueue;
    for (let i = 0; i < opts.size; i++) this.#idle.push(this.#spawn());
  }

  /** Jobs running or waiting. */
  get load(): number {
    return this.#pending.size + this.#queue.length;
  }

  run(body: WithoutId<Req>): Promise<Rep> {
    if (this.#closed) return Promise.reject(new SatelliteError('UNAVAILABLE', 'worker pool closed'));
    const msg = { ...body, id: ++this.#seq } as unknown as Req;
    return new Promise<Rep>((resolve, reject) => {
      const worker = this.#idle.pop();
      if (worker) return this.#dispatch(worker, msg, resolve, reject);
      if (this.#queue.length >= this.#maxQueue) return reject(new SatelliteError('BUSY', 'worker pool queue full'));
      this.#queue.push({ msg, resolve, reject });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(new SatelliteError('UNAVAILABLE', 'worker pool closed'));
    const all = [...this.#idle, ...this.#pending.keys()];
    this.#idle.length = 0;
    await Promise.all(all.map((w) => w.terminate()));
  }

  #spawn(): Worker {
    const worker = new Worker(this.#url);
    // Never keeps the process alive on its own; close() terminates it.
    worker.unref();
    worker.on('message', (reply: Rep) => {
      const job = this.#pending.get(worker);
      this.#pending.delete(worker);
      job?.resolve(reply);
      this.#next(worker);
    });
    let dead = false;
    const fail = (err: unknown) => {
      if (dead) return;
      dead = true;
      const job = this.#pending.get(worker);
      this.#pending.delete(worker);
      const at = this.#idle.indexOf(worker);
      if (at >= 0) this.#idle.splice(at, 1);
      job?.reject(err instanceof Error ? err : new Error(`worker exited: ${String(err)}`));
      if (!this.#closed) this.#next(this.#spawn());
    };
    worker.once('error', fail);
    worker.once('exit', (code) => fail(new Error(`worker exited with code ${code}`)));
    return worker;
  }

  #next(worker: Worker): void {
    if (this.#closed) return;
    const job = this.#queue.shift();
    if (job) this.#dispatch(worker, job.msg, job.resolve, job.reject);
    else this.#idle.push(worker);
  }

  #dispatch(worker: Worker, msg: Req, resolve: (r: Rep) => void, reject: (e: unknown) => void): void {
    this.#pending.set(worker, { resolve, reject });
    worker.postMessage(msg);
  }
}

/** Where a wanted blob comes from: the repository and size its manifest gave. */
export interface WantedBlob {
  repo: string;
  size: number;
}

/** 'wanted': the plan lists it; 'pending': no plan for the newest desired state yet; 'no'. */
export type BlobScope = 'wanted' | 'pending' | 'no';

/**
 * The blobs the desired state references, as the last planning resolved them (digest -> repo and
 * size). What a member of the site may ask this satellite to fetch: exactly what its own sync
 * would fetch, from the repository its own manifest names, never what the asker says.
 */
export class WantedBlobs {
  #planned = new Map<string, WantedBlob>();
  /** The plan being built by a run; it replaces #planned when planning ends. */
  #next: Map<string, WantedBlob> | undefined;
  #plannedGeneration: number | undefined;
  readonly #waiters = new Set<() => void>();

  /** A run starts resolving the desired state. */
  begin(): void {
    this.#next = new Map();
  }

  /** One image resolved: its blobs are wanted from now on. */
  add(repo: string, blobs: ReadonlyArray<{ digest: string; size: number }>): void {
    for (const b of blobs) if (!this.#next?.has(b.digest)) this.#next?.set(b.digest, { repo, size: b.size });
  }

  /** Planning of `generation` ended; complete = every image resolved (else the old plan is kept too). */
  end(generation: number, complete: boolean): void {
    const next = this.#next ?? new Map<string, WantedBlob>();
    if (!complete) for (const [d, w] of this.#planned) if (!next.has(d)) next.set(d, w);
    this.#planned = next;
    this.#next = undefined;
    this.#plannedGeneration = generation;
    for (const wake of [...this.#waiters]) wake();
  }

  get(digest: string): WantedBlob | undefined {
    return this.#next?.get(digest) ?? this.#planned.get(digest);
  }

  /** Cheap, synchronous: for the peer endpoint's answer. */
  scope(digest: string, desiredGeneration: number | undefined, expectsDesired: boolean): BlobScope {
    if (this.get(digest)) return 'wanted';
    if (this.#next !== undefined) return 'pending';
    if (desiredGeneration === undefined) return expectsDesired ? 'pending' : 'no';
    return desiredGeneration === this.#plannedGeneration ? 'no' : 'pending';
  }

  /** Resolves when planning ends, after timeoutMs, or on abort. */
  planned(signal: AbortSignal, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      signal.addEventListener('abort', done, { once: true });
      this.#waiters.add(done);
    });
  }

  /** Wakes every waiter (stopping). */
  wakeAll(): void {
    for (const wake of [...this.#waiters]) wake();
  }
}

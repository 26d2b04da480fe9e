/** Counters of one peer, as the status endpoint shows them (a Prometheus exporter reads these). */
export interface PeerCounters {
  id: string;
  url: string;
  /** Blob bytes this satellite received from the peer (verified or not). */
  bytesReceived: number;
  blobsReceived: number;
  /** Blob bytes this satellite served to the peer (as it named itself). */
  bytesServed: number;
  /** Requests that failed: refused, timed out, cut, or answered out of contract. */
  failures: number;
  /** Blobs whose bytes from this peer did not hash to their digest. */
  badDigests: number;
  lastError: string | null;
  /** Skipped until then after a failure (ISO time), else null. */
  downUntil: string | null;
}

const MAX_BAD_DIGESTS = 4096;
const MAX_SERVED_NAMES = 256;

/** Per-peer counters, cool-downs and the digests each peer got wrong. */
export class PeerStats {
  readonly #peers = new Map<string, PeerCounters>();
  readonly #down = new Map<string, number>();
  /** digest -> keys of peers whose bytes for it failed verification (insertion-ordered, capped). */
  readonly #bad = new Map<string, Set<string>>();
  readonly #served = new Map<string, number>();
  #servedTotal = 0;
  readonly #cooldownMs: number;

  constructor(cooldownMs: number) {
    this.#cooldownMs = cooldownMs;
  }

  #get(key: string, url: string): PeerCounters {
    let c = this.#peers.get(key);
    if (!c) {
      c = { id: key, url, bytesReceived: 0, blobsReceived: 0, bytesServed: 0, failures: 0, badDigests: 0, lastError: null, downUntil: null };
      this.#peers.set(key, c);
    }
    return c;
  }

  received(key: string, url: string, bytes: number): void {
    this.#get(key, url).bytesReceived += bytes;
  }

  blobReceived(key: string, url: string): void {
    this.#get(key, url).blobsReceived++;
  }

  /** A failed request: counted, and the peer is skipped for the cool-down. */
  failed(key: string, url: string, err: unknown): void {
    const c = this.#get(key, url);
    c.failures++;
    c.lastError = err instanceof Error ? err.message : String(err);
    if (this.#cooldownMs > 0) {
      const until = Date.now() + this.#cooldownMs;
      this.#down.set(key, until);
      c.downUntil = new Date(until).toISOString();
    }
  }

  isDown(key: string): boolean {
    const until = this.#down.get(key);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#down.delete(key);
    const c = this.#peers.get(key);
    if (c) c.downUntil = null;
    return false;
  }

  /** The peer's bytes for digest were wrong: never ask it for that digest again. */
  badDigest(key: string, url: string, digest: string): void {
    this.#get(key, url).badDigests++;
    let set = this.#bad.get(digest);
    if (!set) {
      if (this.#bad.size >= MAX_BAD_DIGESTS) this.#bad.delete(this.#bad.keys().next().value!);
      set = new Set();
      this.#bad.set(digest, set);
    }
    set.add(key);
  }

  isBad(key: string, digest: string): boolean {
    return this.#bad.get(digest)?.has(key) ?? false;
  }

  /** Bytes served to an asker; `name` is what it called itself (untrusted, for counting only). */
  served(name: string | undefined, bytes: number, urlOf: (name: string) => string | undefined): void {
    this.#servedTotal += bytes;
    const key = name ?? 'unknown';
    const url = urlOf(key);
    if (url !== undefined) {
      this.#get(key, url).bytesServed += bytes;
      return;
    }
    if (this.#served.has(key) || this.#served.size < MAX_SERVED_NAMES) this.#served.set(key, (this.#served.get(key) ?? 0) + bytes);
  }

  snapshot() {
    for (const key of this.#down.keys()) this.isDown(key);
    return {
      peers: [...this.#peers.values()].map((c) => ({ ...c })),
      bytesServed: this.#servedTotal,
      /** Served to askers that are not (yet) known members. */
      servedToOthers: Object.fromEntries(this.#served),
    };
  }
}

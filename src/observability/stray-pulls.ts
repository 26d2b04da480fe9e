import { isDigest } from '../lib/digest.ts';
import { isRepositoryName, isTag } from '../oci/names.ts';
import type { FinishedRequest } from '../registry/index.ts';

/** One repository and reference devices asked for, with how often they got it and a 404. */
export interface PullCount {
  repository: string;
  reference: string;
  pulls: number;
  notFound: number;
}

interface Entry extends PullCount {
  lastAt: number;
}

/** A HEAD then a GET of the same reference this close together are one pull. */
const SAME_PULL_MS = 2_000;
/** Manifests by digest this soon after a counted pull of their repository are that pull's children. */
const CHILD_WINDOW_MS = 60_000;

export interface StrayPullsOptions {
  /** Distinct references kept; past it the least counted (then the oldest) tenth is dropped. */
  maxKeys?: number;
  /** True for a reference the desired state holds: never recorded (it is not stray). */
  isDesired?: (repository: string, reference: string) => boolean;
  now?: () => number;
}

/**
 * Counts manifest pulls (GET/HEAD answered 200) and 404s by repository and reference, in memory, for
 * the state report's "images devices wanted that are not in the desired state". Bounded: names are
 * the router's validated ones (and checked again), and at most maxKeys references are kept.
 *
 * One `docker pull` asks for a tag, then the index and platform manifest by digest: requests by
 * digest within a minute of a counted pull of the same repository are folded into it, so the tag
 * is what shows. A pull by digest alone is counted under its digest.
 */
export class StrayPulls {
  readonly #entries = new Map<string, Entry>();
  /** Last counted pull per repository (for folding digests), bounded with the entries. */
  readonly #repoPulledAt = new Map<string, number>();
  readonly #maxKeys: number;
  readonly #isDesired: ((repository: string, reference: string) => boolean) | undefined;
  readonly #now: () => number;

  constructor(opts: StrayPullsOptions = {}) {
    this.#maxKeys = Math.max(10, opts.maxKeys ?? 1000);
    this.#isDesired = opts.isDesired;
    this.#now = opts.now ?? Date.now;
  }

  /** One finished registry response (the server's onResponse hook). */
  observe = (r: FinishedRequest): void => {
    const m = r.manifest;
    if (!m || (r.method !== 'GET' && r.method !== 'HEAD')) return;
    const found = r.status === 200;
    if (!found && r.status !== 404) return;
    const { repository, reference } = m;
    if (!isRepositoryName(repository) || repository.length > 255 || reference.length > 200 || !(isTag(reference) || isDigest(reference))) return;
    if (this.#isDesired?.(repository, reference)) return;
    const now = this.#now();
    const byDigest = isDigest(reference);
    if (found && byDigest && now - (this.#repoPulledAt.get(repository) ?? -Infinity) < CHILD_WINDOW_MS) return;
    const key = `${repository}\0${reference}`;
    let e = this.#entries.get(key);
    if (e && now - e.lastAt < SAME_PULL_MS) {
      // The GET after a HEAD (or a 404 retried at once): still one pull.
      e.lastAt = now;
      if (found) this.#repoPulledAt.set(repository, now);
      return;
    }
    if (!e) {
      e = { repository, reference, pulls: 0, notFound: 0, lastAt: now };
      this.#entries.set(key, e);
      if (this.#entries.size > this.#maxKeys) this.#evict();
    }
    e.lastAt = now;
    if (found) {
      e.pulls++;
      this.#repoPulledAt.set(repository, now);
    } else e.notFound++;
  };

  /** The busiest references (pulls + 404s), at most n, skipping those `isDesired` now holds. */
  top(n: number, isDesired?: (repository: string, reference: string) => boolean): PullCount[] {
    const out: PullCount[] = [];
    for (const e of [...this.#entries.values()].sort(busiest)) {
      if (out.length >= n) break;
      if (isDesired?.(e.repository, e.reference)) continue;
      out.push({ repository: e.repository, reference: e.reference, pulls: e.pulls, notFound: e.notFound });
    }
    return out;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Drops the least counted tenth (oldest first among equals). */
  #evict(): void {
    const sorted = [...this.#entries].sort(([, a], [, b]) => a.pulls + a.notFound - (b.pulls + b.notFound) || a.lastAt - b.lastAt);
    for (const [key] of sorted.slice(0, Math.max(1, Math.floor(this.#maxKeys / 10)))) this.#entries.delete(key);
    const repos = new Set([...this.#entries.values()].map((e) => e.repository));
    for (const repo of this.#repoPulledAt.keys()) if (!repos.has(repo)) this.#repoPulledAt.delete(repo);
  }
}

function busiest(a: Entry, b: Entry): number {
  return b.pulls + b.notFound - (a.pulls + a.notFound) || b.lastAt - a.lastAt;
}


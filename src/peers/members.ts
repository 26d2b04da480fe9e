import { createHash } from 'node:crypto';
import type { PeerEntry } from './config-schema.ts';

/** One other satellite of the site. `key` is what rendezvous hashing ranks: its id, else its URL. */
export interface Member {
  key: string;
  url: string;
}

/** http://Host:8585/ -> http://host:8585 (one spelling per member, on every satellite). */
export function normalizeUrl(url: string): string {
  return new URL(url).origin;
}

/**
 * The site as this satellite sees it: itself plus the other members, from the static list and
 * from Ground Control's membership (replaced whole on every update). Entries naming this
 * satellite (same key or URL) are dropped.
 */
export class Membership {
  readonly #selfKey: string | undefined;
  readonly #selfUrl: string | undefined;
  readonly #static: Member[];
  #published: Member[] = [];

  constructor(opts: { selfKey?: string | undefined; selfUrl?: string | undefined; static?: readonly PeerEntry[] | undefined }) {
    this.#selfUrl = opts.selfUrl === undefined ? undefined : normalizeUrl(opts.selfUrl);
    this.#selfKey = opts.selfKey ?? this.#selfUrl;
    this.#static = this.#clean(opts.static ?? []);
  }

  /** This satellite's key, if it has one (without one it never owns a blob). */
  get selfKey(): string | undefined {
    return this.#selfKey;
  }

  /** Replaces the membership learned from Ground Control. */
  setPublished(entries: readonly PeerEntry[]): void {
    this.#published = this.#clean(entries);
  }

  /** True when the member is known only from Ground Control's membership (it gets the site secret). */
  fromSite(key: string): boolean {
    return !this.#static.some((m) => m.key === key) && this.#published.some((m) => m.key === key);
  }

  /** The other members, static first; one entry per key. */
  peers(): Member[] {
    const out = new Map<string, Member>();
    for (const m of [...this.#static, ...this.#published]) if (!out.has(m.key)) out.set(m.key, m);
    return [...out.values()];
  }

  #clean(entries: readonly PeerEntry[]): Member[] {
    const out: Member[] = [];
    for (const e of entries) {
      const url = normalizeUrl(e.url);
      const key = e.id ?? url;
      if (key === this.#selfKey || url === this.#selfUrl) continue;
      out.push({ key, url });
    }
    return out;
  }
}

/** Highest-random-weight score of a member for a digest: every satellite computes the same. */
function score(key: string, digest: string): bigint {
  return createHash('sha256').update(key).update('\n').update(digest).digest().readBigUInt64BE(0);
}

/**
 * Rendezvous hashing: the keys ranked for a digest, best first. The first is the blob's owner, the
 * one member that fetches it over the WAN; adding or removing a member moves only its own share.
 */
export function rank(keys: readonly string[], digest: string): string[] {
  return keys
    .map((key) => ({ key, s: score(key, digest) }))
    .sort((a, b) => (a.s === b.s ? (a.key < b.key ? -1 : 1) : a.s > b.s ? -1 : 1))
    .map((e) => e.key);
}

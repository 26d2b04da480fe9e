import type { Database } from 'lmdb';
import type { StoreContext } from './context.ts';
import { durableTransaction, prefixRange, scan } from './index-db.ts';

/** A tag the pull-through cache resolved from its upstream, and when it last checked. */
export interface CachedTag {
  digest: string;
  checkedAt: number;
}

/** A manifest or blob the pull-through cache fetched: size and last access (ms since epoch). */
export interface CachedEntry {
  size: number;
  lastAccess: number;
}

/**
 * The pull-through cache's bookkeeping, in the store's LMDB environment: which tags, manifests
 * and blobs came from the proxy upstream, and when they were last used (for LRU eviction).
 * Access times are kept in memory and written in batches (flush()), never on every GET.
 */
export class CacheIndex {
  readonly #ctx: StoreContext;
  readonly #tags: Database<CachedTag, [string, string]>;
  /** [repo, digest] */
  readonly #manifests: Database<CachedEntry, [string, string]>;
  readonly #blobs: Database<CachedEntry, string>;
  /**
   * Repositories whose content came with a device's credentials (the satellite's own were
   * refused), and blobs fetched for them: served only to requests the upstream authorised.
   */
  readonly #restrictedRepos: Database<{ since: number }, string>;
  readonly #restrictedBlobs: Database<{ since: number }, string>;
  /** Pending access times: "m\0repo\0digest" or "b\0digest" -> ms. */
  readonly #touched = new Map<string, number>();

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
    this.#tags = ctx.db.root.openDB<CachedTag, [string, string]>({ name: 'cache-tags' });
    this.#manifests = ctx.db.root.openDB<CachedEntry, [string, string]>({ name: 'cache-manifests' });
    this.#blobs = ctx.db.root.openDB<CachedEntry, string>({ name: 'cache-blobs' });
    this.#restrictedRepos = ctx.db.root.openDB<{ since: number }, string>({ name: 'cache-restricted-repos' });
    this.#restrictedBlobs = ctx.db.root.openDB<{ since: number }, string>({ name: 'cache-restricted-blobs' });
  }

  /** Marks a repository restricted (durably, before any of its content is stored); never unmarked. */
  async markRestrictedRepo(repo: string): Promise<void> {
    if (this.#restrictedRepos.get(repo)) return;
    await durableTransaction(this.#ctx.db, () => this.#restrictedRepos.put(repo, { since: Date.now() }));
  }

  isRestrictedRepo(repo: string): boolean {
    return this.#restrictedRepos.get(repo) !== undefined;
  }

  /** Marks a blob fetched for a restricted repository: never linked into another one on its digest alone. */
  async markRestrictedBlob(digest: string): Promise<void> {
    if (this.#restrictedBlobs.get(digest)) return;
    await durableTransaction(this.#ctx.db, () => this.#restrictedBlobs.put(digest, { since: Date.now() }));
  }

  isRestrictedBlob(digest: string): boolean {
    return this.#restrictedBlobs.get(digest) !== undefined;
  }

  getTag(repo: string, tag: string): CachedTag | undefined {
    return this.#tags.get([repo, tag]);
  }

  async putTag(repo: string, tag: string, digest: string, checkedAt = Date.now()): Promise<void> {
    await durableTransaction(this.#ctx.db, () => this.#tags.put([repo, tag], { digest, checkedAt }));
  }

  async removeTag(repo: string, tag: string): Promise<void> {
    await durableTransaction(this.#ctx.db, () => this.#tags.remove([repo, tag]));
  }

  /** Proxy tags of a repository pointing at digest. */
  tagsPointingAt(repo: string, digest: string): string[] {
    const out: string[] = [];
    for (const { key, value } of scan(this.#tags.getRange(prefixRange([repo])))) if (value.digest === digest) out.push(key[1]);
    return out;
  }

  async recordManifest(repo: string, digest: string, size: number): Promise<void> {
    const now = Date.now();
    await durableTransaction(this.#ctx.db, () => this.#manifests.put([repo, digest], { size, lastAccess: now }));
  }

  async recordBlob(digest: string, size: number): Promise<void> {
    const now = Date.now();
    await durableTransaction(this.#ctx.db, () => this.#blobs.put(digest, { size, lastAccess: now }));
  }

  isCachedManifest(repo: string, digest: string): boolean {
    return this.#manifests.get([repo, digest]) !== undefined;
  }

  isCachedBlob(digest: string): boolean {
    return this.#blobs.get(digest) !== undefined;
  }

  touchManifest(repo: string, digest: string): void {
    this.#touched.set(`m\0${repo}\0${digest}`, Date.now());
  }

  touchBlob(digest: string): void {
    this.#touched.set(`b\0${digest}`, Date.now());
  }

  /** Writes the pending access times in one transaction (not waited for durability: they are hints). */
  async flush(): Promise<void> {
    if (this.#touched.size === 0) return;
    const batch = [...this.#touched];
    this.#touched.clear();
    await this.#ctx.db.root.transaction(() => {
      for (const [key, at] of batch) {
        const parts = key.split('\0');
        if (parts[0] === 'm') {
          const k: [string, string] = [parts[1]!, parts[2]!];
          const rec = this.#manifests.get(k);
          if (rec && rec.lastAccess < at) this.#manifests.put(k, { ...rec, lastAccess: at });
        } else {
          const rec = this.#blobs.get(parts[1]!);
          if (rec && rec.lastAccess < at) this.#blobs.put(parts[1]!, { ...rec, lastAccess: at });
        }
      }
    });
  }

  manifests(): Array<{ repo: string; digest: string } & CachedEntry> {
    return [...scan(this.#manifests.getRange())].map(({ key, value }) => ({ repo: key[0], digest: key[1], ...this.#withPending(`m\0${key[0]}\0${key[1]}`, value) }));
  }

  blobs(): Array<{ digest: string } & CachedEntry> {
    return [...scan(this.#blobs.getRange())].map(({ key, value }) => ({ digest: key, ...this.#withPending(`b\0${key}`, value) }));
  }

  /** Forgets a manifest and the proxy tags that pointed at it in that repository. */
  async forgetManifest(repo: string, digest: string): Promise<void> {
    const tags = this.tagsPointingAt(repo, digest);
    await durableTransaction(this.#ctx.db, () => {
      this.#manifests.remove([repo, digest]);
      for (const tag of tags) this.#tags.remove([repo, tag]);
    });
  }

  async forgetBlobs(digests: string[]): Promise<void> {
    if (digests.length === 0) return;
    await durableTransaction(this.#ctx.db, () => {
      for (const d of digests) this.#blobs.remove(d);
    });
  }

  /** Bytes of cached blobs still in the store (records of blobs removed elsewhere are dropped lazily). */
  bytes(): number {
    let total = 0;
    for (const { key, value } of scan(this.#blobs.getRange())) if (this.#ctx.db.blobs.get(key)) total += value.size;
    return total;
  }

  #withPending(key: string, value: CachedEntry): CachedEntry {
    const at = this.#touched.get(key);
    return at !== undefined && at > value.lastAccess ? { ...value, lastAccess: at } : value;
  }
}

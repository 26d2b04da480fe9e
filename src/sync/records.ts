import type { Database } from 'lmdb';
import type { Store } from '../store/index.ts';
import type { DesiredState } from './desired-state.ts';
import { refKey } from './desired-state.ts';
import type { ImageState, RunReport } from './image-state.ts';
import type { SyncedRefs } from './prune.ts';

type ImageFields = Omit<ImageState, 'repository' | 'reference' | 'updatedAt' | 'lastOkAt'>;

/**
 * What sync keeps in the store's index: the desired state in force, the generation applied, the
 * last run's report, each reference's state, and which manifests each reference holds. Every
 * write is one durable transaction.
 */
export class SyncRecords {
  readonly #store: Store;
  readonly #state: Database<unknown, string>;
  readonly #images: Database<ImageState, string>;
  /** [repository, reference] -> manifest digests (prune.ts reads it). */
  readonly synced: SyncedRefs;

  constructor(store: Store) {
    this.#store = store;
    this.#state = store.metaDb<unknown>('sync-state');
    this.#images = store.metaDb<ImageState>('sync-images');
    this.synced = store.metaDb<{ digests: string[] }, [string, string]>('sync-refs');
  }

  desired(): DesiredState | undefined {
    return this.#state.get('desired') as DesiredState | undefined;
  }
  setDesired(state: DesiredState): Promise<void> {
    return this.#put('desired', state);
  }
  applied(): { generation: number; at?: string } | undefined {
    return this.#state.get('applied') as { generation: number } | undefined;
  }
  setApplied(generation: number, at: string): Promise<void> {
    return this.#put('applied', { generation, at });
  }
  lastRun(): RunReport | undefined {
    return this.#state.get('lastRun') as RunReport | undefined;
  }
  setLastRun(report: RunReport): Promise<void> {
    return this.#put('lastRun', report);
  }

  images(): ImageState[] {
    return [...this.#images.getRange()].map((e) => e.value);
  }
  image(key: string): ImageState | undefined {
    return this.#images.get(key);
  }
  /** Records a reference's state; a failed refresh of an image still held keeps its digest and last success. */
  async setImage(ref: { repository: string; reference: string }, s: ImageFields): Promise<void> {
    const key = refKey(ref);
    const prev = this.#images.get(key);
    const now = new Date().toISOString();
    const next: ImageState = { repository: ref.repository, reference: ref.reference, ...s, updatedAt: now };
    if (s.status === 'ok') next.lastOkAt = now;
    else if (prev?.lastOkAt) next.lastOkAt = prev.lastOkAt;
    if (s.status !== 'ok' && prev?.digest && next.digest === undefined) next.digest = prev.digest;
    await this.#store.metaTransaction(() => this.#images.put(key, next));
  }
  /** Drops the state of references not in `keep`. */
  async keepImages(keep: ReadonlySet<string>): Promise<void> {
    for (const { key } of this.#images.getRange()) {
      if (!keep.has(key)) await this.#store.metaTransaction(() => this.#images.remove(key));
    }
  }

  /** Manifest digests a reference holds. */
  held(ref: { repository: string; reference: string }): string[] {
    return this.synced.get([ref.repository, ref.reference])?.digests ?? [];
  }
  /** Every manifest digest sync holds (the pull-through cache never evicts them). */
  heldManifests(): Set<string> {
    const out = new Set<string>();
    for (const { value } of this.synced.getRange()) for (const d of value.digests) out.add(d);
    return out;
  }
  /** Remembers which manifests a reference holds; returns the ones it no longer holds. */
  async recordHeld(ref: { repository: string; reference: string }, digests: string[]): Promise<string[]> {
    const key: [string, string] = [ref.repository, ref.reference];
    const previous = this.synced.get(key)?.digests ?? [];
    if (previous.length !== digests.length || previous.some((d, i) => d !== digests[i])) {
      await this.#store.metaTransaction(() => this.synced.put(key, { digests }));
    }
    return previous.filter((d) => !digests.includes(d));
  }
  /** Forgets what a reference holds; returns what it held. */
  async dropHeld(ref: { repository: string; reference: string }): Promise<string[]> {
    const held = this.held(ref);
    await this.#store.metaTransaction(() => this.synced.remove([ref.repository, ref.reference]));
    return held;
  }

  #put(key: string, value: unknown): Promise<void> {
    return this.#store.metaTransaction(() => void this.#state.put(key, value));
  }
}

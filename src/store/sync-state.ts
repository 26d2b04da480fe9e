import type { Database } from 'lmdb';
import type { DesiredState } from '../protocol/desired-state.ts';
import type { DiskSpace } from './free-space.ts';
import { durableTransaction, scan, type IndexDb } from './index-db.ts';

/**
 * The LMDB databases sync keeps (names, keys and encodings are on-disk format: data dirs written by
 * earlier versions open unchanged; test/store/ownership.test.ts pins them).
 */
export const SYNC_DBS = { state: 'meta:sync-state', images: 'meta:sync-images', refs: 'meta:sync-refs', meter: 'meta:sync-meter' } as const;

/** The types of sync's own records (its run report, its per-reference state), named by sync. */
export interface SyncRecordTypes {
  lastRun: unknown;
  image: unknown;
}

/** Keys of the sync-state database. */
type StateKey = 'desired' | 'applied' | 'lastRun';

/**
 * Sync's records in the store's index: the desired state in force, the generation applied, the
 * last run's report (sync-state), each reference's state (sync-images, key "repo:reference"),
 * the manifests each reference holds (sync-refs, [repository, reference]) and the bytes metered
 * per period (sync-meter, [period, period key]). Every `put*` / `remove*` is one durable
 * transaction unless its comment says otherwise.
 */
export class SyncState<T extends SyncRecordTypes = SyncRecordTypes> {
  readonly #db: IndexDb;
  readonly #disk: DiskSpace;
  readonly #state: Database<unknown, StateKey>;
  readonly #images: Database<T['image'], string>;
  readonly #refs: Database<{ digests: string[] }, [string, string]>;
  readonly #meter: Database<number, [string, string]>;

  constructor(db: IndexDb, disk: DiskSpace) {
    this.#db = db;
    this.#disk = disk;
    this.#state = db.root.openDB<unknown, StateKey>({ name: SYNC_DBS.state });
    this.#images = db.root.openDB<T['image'], string>({ name: SYNC_DBS.images });
    this.#refs = db.root.openDB<{ digests: string[] }, [string, string]>({ name: SYNC_DBS.refs });
    this.#meter = db.root.openDB<number, [string, string]>({ name: SYNC_DBS.meter });
  }

  #write<R>(fn: () => R): Promise<R> {
    return this.#disk.guard('metadata', 0, () => durableTransaction(this.#db, fn));
  }
  #put(key: StateKey, value: unknown): Promise<void> {
    return this.#write(() => void this.#state.put(key, value));
  }

  desired(): DesiredState | undefined {
    return this.#state.get('desired') as DesiredState | undefined;
  }
  putDesired(state: DesiredState): Promise<void> {
    return this.#put('desired', state);
  }
  /** The generation applied, when, and by what ('sync', or 'bundle' for an import; absent in records before bundles). */
  applied(): { generation: number; at?: string; source?: string } | undefined {
    return this.#state.get('applied') as { generation: number; at?: string; source?: string } | undefined;
  }
  putApplied(applied: { generation: number; at: string; source?: string }): Promise<void> {
    return this.#put('applied', applied);
  }
  lastRun(): T['lastRun'] | undefined {
    return this.#state.get('lastRun') as T['lastRun'] | undefined;
  }
  putLastRun(report: T['lastRun']): Promise<void> {
    return this.#put('lastRun', report);
  }

  images(): Array<{ key: string; image: T['image'] }> {
    return [...scan(this.#images.getRange())].map(({ key, value }) => ({ key, image: value }));
  }
  image(key: string): T['image'] | undefined {
    return this.#images.get(key);
  }
  async putImage(key: string, image: T['image']): Promise<void> {
    await this.#write(() => this.#images.put(key, image));
  }
  async removeImage(key: string): Promise<void> {
    await this.#write(() => this.#images.remove(key));
  }

  /** Manifest digests a reference holds, if recorded. */
  held(repository: string, reference: string): string[] | undefined {
    return this.#refs.get([repository, reference])?.digests;
  }
  heldRefs(): Array<{ repository: string; reference: string; digests: string[] }> {
    return [...scan(this.#refs.getRange())].map(({ key: [repository, reference], value }) => ({ repository, reference, digests: value.digests }));
  }
  async putHeld(repository: string, reference: string, digests: string[]): Promise<void> {
    await this.#write(() => this.#refs.put([repository, reference], { digests }));
  }
  async removeHeld(repository: string, reference: string): Promise<void> {
    await this.#write(() => this.#refs.remove([repository, reference]));
  }
  /** lmdb-js's batched write, not flushed before it resolves (pruning a removed reference). */
  async forgetHeld(repository: string, reference: string): Promise<void> {
    await this.#refs.remove([repository, reference]);
  }

  /** Bytes recorded for a period ('hour' | 'day' | 'month') and its key ("2026-11-25T04"). */
  metered(period: string, key: string): number | undefined {
    return this.#meter.get([period, key]);
  }
  /**
   * Adds bytes to periods in one batched transaction (not flushed before it resolves, not refused
   * on a full disk: the meter flushes every second and must never hold a download up).
   */
  async addMetered(batch: ReadonlyArray<[period: string, key: string, bytes: number]>): Promise<void> {
    await this.#meter.transaction(() => {
      for (const [p, key, bytes] of batch) this.#meter.put([p, key], (this.#meter.get([p, key]) ?? 0) + bytes);
    });
  }
}

import type { Store, SyncState } from '../store/index.ts';
import type { DesiredState } from './desired-state.ts';
import { refKey } from './desired-state.ts';
import type { ImageState, RunReport } from './image-state.ts';
import type { AppliedSource } from './adopt.ts';

type ImageFields = Omit<ImageState, 'repository' | 'reference' | 'updatedAt' | 'lastOkAt'>;

/** Sync's records as the store keeps them (store/sync-state.ts), with sync's own types. */
export type SyncStore = SyncState<{ lastRun: RunReport; image: ImageState }>;

/**
 * What sync keeps in the store's index: the desired state in force, the generation applied, the
 * last run's report, each reference's state, and which manifests each reference holds. Every
 * write is one durable transaction.
 */
export class SyncRecords {
  /** The store's records (prune.ts reads and forgets held references through it). */
  readonly db: SyncStore;

  constructor(store: Pick<Store, 'syncState'>) {
    this.db = store.syncState<{ lastRun: RunReport; image: ImageState }>();
  }

  desired(): DesiredState | undefined {
    return this.db.desired();
  }
  setDesired(state: DesiredState): Promise<void> {
    return this.db.putDesired(state);
  }
  applied(): { generation: number; at?: string; source: AppliedSource } | undefined {
    const a = this.db.applied();
    return a && { ...a, source: a.source === 'bundle' ? 'bundle' : 'sync' };
  }
  /**
   * Records a generation applied; never an older one than recorded (a run that started on an older
   * desired state may finish after a bundle applied a newer one).
   */
  async setApplied(generation: number, at: string, source: AppliedSource = 'sync'): Promise<void> {
    const prev = this.db.applied();
    if (prev && prev.generation > generation) return;
    await this.db.putApplied({ generation, at, source });
  }
  lastRun(): RunReport | undefined {
    return this.db.lastRun();
  }
  setLastRun(report: RunReport): Promise<void> {
    return this.db.putLastRun(report);
  }

  images(): ImageState[] {
    return this.db.images().map((e) => e.image);
  }
  image(key: string): ImageState | undefined {
    return this.db.image(key);
  }
  /** Records a reference's state; a failed refresh of an image still held keeps its digest and last success. */
  async setImage(ref: { repository: string; reference: string }, s: ImageFields): Promise<void> {
    const key = refKey(ref);
    const prev = this.db.image(key);
    const now = new Date().toISOString();
    const next: ImageState = { repository: ref.repository, reference: ref.reference, ...s, updatedAt: now };
    if (s.status === 'ok') next.lastOkAt = now;
    else if (prev?.lastOkAt) next.lastOkAt = prev.lastOkAt;
    if (s.status !== 'ok' && prev?.digest && next.digest === undefined) next.digest = prev.digest;
    await this.db.putImage(key, next);
  }
  /** Drops the state of references not in `keep`. */
  async keepImages(keep: ReadonlySet<string>): Promise<void> {
    for (const { key } of this.db.images()) {
      if (!keep.has(key)) await this.db.removeImage(key);
    }
  }

  /** Manifest digests a reference holds. */
  held(ref: { repository: string; reference: string }): string[] {
    return this.db.held(ref.repository, ref.reference) ?? [];
  }
  /** Every manifest digest sync holds (the pull-through cache never evicts them). */
  heldManifests(): Set<string> {
    const out = new Set<string>();
    for (const { digests } of this.db.heldRefs()) for (const d of digests) out.add(d);
    return out;
  }
  /** Remembers which manifests a reference holds; returns the ones it no longer holds. */
  async recordHeld(ref: { repository: string; reference: string }, digests: string[]): Promise<string[]> {
    const previous = this.held(ref);
    if (previous.length !== digests.length || previous.some((d, i) => d !== digests[i])) {
      await this.db.putHeld(ref.repository, ref.reference, digests);
    }
    return previous.filter((d) => !digests.includes(d));
  }
  /** Forgets what a reference holds; returns what it held. */
  async dropHeld(ref: { repository: string; reference: string }): Promise<string[]> {
    const held = this.held(ref);
    await this.db.removeHeld(ref.repository, ref.reference);
    return held;
  }
}

import type { ImageState } from './image-state.ts';

/** What progress needs from the store: stored blobs, and the bytes of a partial download now. */
export interface ProgressStore {
  hasBlob(digest: string): boolean;
  partialBytes(digest: string): number | undefined;
}

interface InProgress {
  /** When it began (ISO): a record written since then is the image's outcome, not its past. */
  since: string;
  repository: string;
  reference: string;
  blobs: ReadonlyArray<{ digest: string; size: number }>;
}

const keyOf = (r: { repository: string; reference: string }) => `${r.repository}:${r.reference}`;

/**
 * The images a run is applying now (planned, waiting for a slot or downloading), in memory only.
 * Their status reads as pending with bytes done/total: the blobs on disk (stored, or the partial
 * file's size now) against the sizes the manifests gave. Nothing is counted while bytes flow; the
 * numbers are read from disk when someone asks (a state report, `satellite status`, a scrape).
 */
export class ImageProgress {
  readonly #active = new Map<string, InProgress>();

  begin(ref: { repository: string; reference: string }, blobs: ReadonlyArray<{ digest: string; size: number }>): void {
    this.#active.set(keyOf(ref), { since: new Date().toISOString(), repository: ref.repository, reference: ref.reference, blobs });
  }

  end(ref: { repository: string; reference: string }): void {
    this.#active.delete(keyOf(ref));
  }

  /**
   * The recorded image states with the images in progress as pending, with bytesDone/bytesTotal
   * (an image seen for the first time has no record yet: it is added). An update of an image that
   * is ok keeps serving the old digest and reads pending until the new one is committed; a retried
   * one keeps its last failure's code and reason.
   */
  merge(images: ImageState[], store: ProgressStore, now = new Date().toISOString()): ImageState[] {
    if (this.#active.size === 0) return images;
    const byKey = new Map(images.map((i) => [keyOf(i), i]));
    const out = images.slice();
    for (const [key, p] of this.#active) {
      const prev = byKey.get(key);
      // Its outcome is committed and end() is a turn away: the record says it all.
      if (prev && prev.updatedAt >= p.since) continue;
      let done = 0;
      let total = 0;
      for (const b of p.blobs) {
        total += b.size;
        done += store.hasBlob(b.digest) ? b.size : Math.min(b.size, store.partialBytes(b.digest) ?? 0);
      }
      // A retried image keeps its last failure (code, reason) on record until it is ok.
      const base: ImageState = prev ?? { repository: p.repository, reference: p.reference, status: 'pending', updatedAt: now };
      const next: ImageState = { ...base, status: 'pending', bytesDone: done, bytesTotal: total };
      if (prev) out[out.indexOf(prev)] = next;
      else out.push(next);
    }
    return out;
  }
}

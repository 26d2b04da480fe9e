import type { DownloadProgress } from './types.ts';

/** Samples older than this are forgotten: the rate is over the last few seconds. */
const WINDOW_MS = 10_000;

/**
 * Rate and ETA of downloads in progress, from the bytes on disk seen at successive status requests
 * (a watcher polls; nobody watching costs nothing). The first look has no rate yet.
 */
export class DownloadRates {
  readonly #samples = new Map<string, Array<{ at: number; bytes: number }>>();

  sample(downloads: Array<{ digest: string; bytes: number; size: number }>, now = Date.now()): DownloadProgress[] {
    const seen = new Set<string>();
    const out = downloads.map((d) => {
      seen.add(d.digest);
      const list = (this.#samples.get(d.digest) ?? []).filter((s) => now - s.at <= WINDOW_MS && s.bytes <= d.bytes);
      list.push({ at: now, bytes: d.bytes });
      this.#samples.set(d.digest, list);
      const first = list[0]!;
      const secs = (now - first.at) / 1000;
      const rate = secs >= 0.2 ? (d.bytes - first.bytes) / secs : null;
      const eta = rate && rate > 0 ? Math.max(0, Math.round((d.size - d.bytes) / rate)) : null;
      return { digest: d.digest, bytes: d.bytes, size: d.size, bytesPerSecond: rate === null ? null : Math.round(rate), etaSeconds: eta };
    });
    for (const digest of this.#samples.keys()) if (!seen.has(digest)) this.#samples.delete(digest);
    return out;
  }
}

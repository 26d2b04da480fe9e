import type { Readable } from 'node:stream';

/** Where blob bytes came from: the upstream itself, or a peer satellite of the site that had them. */
export interface BlobOrigin {
  kind: 'upstream' | 'peer';
  id: string;
}

/** One answer of a source: the body from `start` (0 when the source ignored the Range asked for). */
export interface OpenedBlob {
  status: 200 | 206;
  start: number;
  /** The blob's whole size, when the source said. */
  total?: number;
  body: Readable;
  origin: BlobOrigin;
}

export interface OpenOptions {
  /** Ask for the bytes from here on (Range: bytes=offset-). */
  offset: number;
  /** The blob's size from the manifest, when known (peers need it to ask for the blob). */
  size?: number | undefined;
  signal: AbortSignal;
}

/**
 * The one contract of a place blob bytes come from (site peers, the upstream): open at an offset,
 * and be told when bytes it delivered turned out bad. A source that does not have the blob answers
 * undefined so the next one is asked; the last source of a chain (the upstream) answers or throws.
 */
export interface BlobSource {
  open(repo: string, digest: string, opts: OpenOptions): Promise<OpenedBlob | undefined>;
  /**
   * Bytes of `digest` that `origins` delivered did not hash to it (they were discarded). Returns
   * true when another attempt may reach a different source, so the fetch should start over.
   */
  reportBad?(digest: string, origins: BlobOrigin[]): boolean;
  /** A later source of the chain serves `digest` (peers tell askers at the site to wait for it). */
  passed?(digest: string): void;
}

/**
 * Sources asked in order: the first that has the blob answers. Bad bytes are reported to every
 * source; a later source serving the blob is announced to the earlier ones.
 */
export function chainSources(sources: BlobSource[]): Required<Pick<BlobSource, 'open' | 'reportBad'>> {
  return {
    async open(repo, digest, opts) {
      for (let i = 0; i < sources.length; i++) {
        const got = await sources[i]!.open(repo, digest, opts);
        if (!got) continue;
        for (const earlier of sources.slice(0, i)) earlier.passed?.(digest);
        return got;
      }
      return undefined;
    },
    reportBad(digest, origins) {
      let again = false;
      for (const s of sources) if (s.reportBad?.(digest, origins)) again = true;
      return again;
    },
  };
}

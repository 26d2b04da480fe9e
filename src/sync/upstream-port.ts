import type { Readable } from 'node:stream';

/** What sync needs from an upstream registry client (src/upstream implements it). */
export interface UpstreamPort {
  ping(signal?: AbortSignal): Promise<void>;
  getManifest(repo: string, reference: string, signal?: AbortSignal): Promise<{ digest: string; mediaType: string; body: Buffer }>;
  fetchBlob(
    repo: string,
    digest: string,
    opts?: { offset?: number; signal?: AbortSignal },
  ): Promise<{ status: 200 | 206; start: number; total?: number; body: Readable }>;
  close(): Promise<void>;
}

import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { copyKept, FetchErrorCode, fetchError, type BlobOrigin } from '../fetch/index.ts';
import { parseDigest } from '../lib/digest.ts';
import { isSatelliteError, SatelliteError } from '../lib/errors.ts';
import type { RateLimiter } from '../lib/rate-limiter.ts';
import { isDiskError, type Store } from '../store/index.ts';
import { SyncErrorCode, syncError } from './errors.ts';
import type { UpstreamPort } from './upstream-port.ts';

export interface DownloadDeps {
  store: Store;
  upstream: UpstreamPort;
  log: Logger;
  limiter?: RateLimiter | undefined;
  /** Returns a reason to hold downloads (window closed, cap reached), checked at start and per chunk. */
  gate: (phase: 'start' | 'stream') => SatelliteError | undefined;
  /** Make progress durable every this many bytes. */
  checkpointBytes: number;
  /** Attempts in a row that make no progress before giving up on this blob for this run. */
  attempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface DownloadResult {
  digest: string;
  size: number;
  /** Where this call started: > 0 when a partial download from before was resumed. */
  resumedFrom: number;
  /** Body bytes received from the upstream by this call. */
  bytesReceived: number;
}

/** Exponential backoff with full jitter. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.random() * Math.min(maxMs, baseMs * 2 ** attempt);
}

/**
 * Downloads one blob into its partial file, resuming with `Range: bytes=N-` from whatever an
 * earlier attempt, run or process left durable, and commits it to the store only after the whole
 * file hashes to the digest. Corrupt bytes are discarded, never stored.
 */
export async function downloadBlob(
  deps: DownloadDeps,
  repo: string,
  want: { digest: string; size: number },
  signal: AbortSignal,
): Promise<DownloadResult> {
  const { store, log } = deps;
  const release = store.pin(want.digest);
  let startOvers = 0;
  try {
    for (;;) {
      const result = await downloadOnce(deps, repo, want, signal);
      if (result.ok) return result.ok;
      // Bad bytes from a peer: the port now avoids that source, so start over from zero elsewhere.
      if (!result.retry || ++startOvers > deps.attempts) throw result.error;
      log.warn({ digest: want.digest, sources: result.sources }, 'blob failed verification; fetching it from another source');
    }
  } finally {
    release();
  }
}

type Outcome = { ok: DownloadResult } | { ok?: undefined; error: Error; retry: boolean; sources: BlobOrigin[] };

async function downloadOnce(deps: DownloadDeps, repo: string, want: { digest: string; size: number }, signal: AbortSignal): Promise<Outcome> {
  const { store, upstream, log } = deps;
  const { algorithm } = parseDigest(want.digest);
  const sources = new Map<string, BlobOrigin>();
  const partial = await store.beginPartial(want.digest, want.size);
  const resumedFrom = partial.offset;
  if (resumedFrom > 0) log.info({ digest: want.digest, offset: resumedFrom, size: want.size }, 'download resuming from checkpoint');
  // Bytes left by an earlier run came from a source we no longer know.
  if (partial.offset > 0) sources.set('earlier', { kind: 'upstream', id: 'earlier' });
  let hash = await hashPrefix(partial.path, partial.offset, algorithm);
  let offset = partial.offset;
  let bytesReceived = 0;
  let failures = 0;
  while (offset < want.size || want.size === 0) {
    const held = deps.gate('start');
    if (held) throw held;
    const before = offset;
    const fh = await open(partial.path, 'r+');
    try {
      const res = await upstream.fetchBlob(repo, want.digest, { offset, signal, size: want.size });
      const source = res.origin ?? { kind: 'upstream', id: 'upstream' };
      sources.set(`${source.kind}:${source.id}`, source);
      if (res.start !== offset) {
        // The upstream ignored the range (200): start over rather than append the wrong bytes.
        log.info({ digest: want.digest, offset }, 'upstream does not resume; restarting blob');
        await fh.truncate(0);
        offset = 0;
        hash = createHash(algorithm);
        sources.clear();
        sources.set(`${source.kind}:${source.id}`, source);
      }
      if (res.total !== undefined && res.total !== want.size) {
        res.body.destroy();
        throw fetchError(FetchErrorCode.sizeMismatch, `upstream says ${want.digest} has ${res.total} bytes, manifest says ${want.size}`);
      }
      let sinceCheckpoint = 0;
      const onAbort = () => res.body.destroy(signal.reason as Error);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      try {
        // Chunk by chunk, and on a cut the bytes already received first: the next Range starts after them.
        await copyKept(res.body, async (chunk) => {
          if (offset + chunk.length > want.size) {
            throw fetchError(FetchErrorCode.sizeMismatch, `upstream sent more than ${want.size} bytes for ${want.digest}`);
          }
          // The bandwidth limit is for the WAN; bytes from a peer at the site are not throttled.
          if (deps.limiter && source.kind !== 'peer') await deps.limiter.take(chunk.length, signal);
          await writeFully(fh, chunk, offset);
          // Hash only what is on disk, so the hash always covers exactly [0, offset).
          hash.update(chunk);
          offset += chunk.length;
          bytesReceived += chunk.length;
          sinceCheckpoint += chunk.length;
          if (sinceCheckpoint >= deps.checkpointBytes) {
            sinceCheckpoint = 0;
            await fh.sync();
            await store.checkpointPartial(want.digest, offset);
          }
          // Held (window closed, cap reached) after this chunk is kept: it already crossed the WAN.
          const held = deps.gate('stream');
          if (held) throw held;
        });
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
      signal.throwIfAborted();
      if (offset < want.size) throw syncError('UPSTREAM_PROTOCOL', `upstream ended ${want.digest} at ${offset} of ${want.size} bytes`);
    } catch (caught) {
      // ENOSPC / EROFS become DISK_FULL / STORE_READ_ONLY: permanent for this run (no retry burns WAN).
      const err = store.disk.translate(caught, `blob ${want.digest}`, want.size - offset);
      // Read the offset before the fsync: a write still in flight is not covered by it.
      const durable = offset;
      const saved = await fh
        .sync()
        .then(() => store.checkpointPartial(want.digest, durable))
        .then(() => true, () => false);
      if (signal.aborted) {
        // Shutdown (SIGTERM) or a new run: the next process or run resumes from here.
        if (saved) log.info({ digest: want.digest, offset: durable, size: want.size }, 'download checkpointed');
        else log.warn({ digest: want.digest, offset: durable, size: want.size }, 'download stopped; checkpoint not saved');
        throw err;
      }
      if (isSatelliteError(err, SyncErrorCode.paused) || isPermanent(err)) throw err;
      // A cut after progress resumes at once; only attempts that got nowhere back off.
      const progressed = offset > before;
      failures = progressed ? 0 : failures + 1;
      if (failures >= deps.attempts) throw err;
      const wait = progressed ? 0 : backoffMs(failures, deps.backoffBaseMs, deps.backoffMaxMs);
      log.info({ digest: want.digest, offset, err: (err as Error).message, retryInMs: Math.round(wait) }, 'blob download interrupted; resuming');
      await sleep(wait, undefined, { signal });
      continue;
    } finally {
      await fh.close().catch(() => undefined);
    }
    if (want.size === 0) break;
  }
  const actual = `${algorithm}:${hash.digest('hex')}`;
  if (actual !== want.digest) {
    await store.discardPartial(want.digest);
    const from = [...sources.values()];
    const error = fetchError(FetchErrorCode.digestMismatch, `blob from ${repo} hashes to ${actual}, expected ${want.digest}: discarded`, {
      expected: want.digest,
      actual,
      sources: from,
    });
    return { error, retry: upstream.reportBadSource?.(want.digest, from) ?? false, sources: from };
  }
  const fh = await open(partial.path, 'r+');
  await fh.sync().finally(() => fh.close());
  await store.commitPartial(want.digest, want.size, repo);
  return { ok: { digest: want.digest, size: want.size, resumedFrom, bytesReceived } };
}

/** Errors that another attempt cannot fix. */
function isPermanent(err: unknown): boolean {
  return isDiskError(err) || (isSatelliteError(err) && ['UPSTREAM_NOT_FOUND', 'UPSTREAM_AUTH', FetchErrorCode.sizeMismatch].includes(err.code));
}

async function writeFully(fh: FileHandle, chunk: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}

/** Re-hashes the bytes a previous process left, so the final check covers the whole blob. */
async function hashPrefix(path: string, length: number, algorithm: string): Promise<Hash> {
  const hash = createHash(algorithm);
  if (length === 0) return hash;
  await pipeline(createReadStream(path, { start: 0, end: length - 1 }), async (source) => {
    for await (const chunk of source) hash.update(chunk as Buffer);
  });
  return hash;
}

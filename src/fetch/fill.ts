import type { Hash } from 'node:crypto';
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { deadlineSignal } from '../lib/deadline-signal.ts';
import { parseDigest } from '../lib/digest.ts';
import { isSatelliteError, SatelliteError } from '../lib/errors.ts';
import { copyKept } from './copy-kept.ts';
import { FetchErrorCode, fetchError } from './errors.ts';
import { feed, hashKept } from './hash-kept.ts';
import type { FillPolicy, FillStore } from './ports.ts';
import type { BlobOrigin, BlobSource, OpenedBlob } from './source.ts';

/** Bytes per read for one reader of the growing file. */
const READ_CHUNK = 256 * 1024;

/** A response being copied into the file, with the deadline it was asked under. */
type Answer = OpenedBlob & { close?: (() => void) | undefined };

/** Verdicts on the bytes: another request cannot change them. */
const VERDICTS: string[] = [FetchErrorCode.digestMismatch, FetchErrorCode.sizeMismatch, FetchErrorCode.rangeIgnored];

export interface FillOptions {
  store: FillStore;
  /** Sources asked in order (site peers, then the upstream), with `repo` as the name to ask for. */
  source: BlobSource;
  repo: string;
  /** The repository the blob is linked to in the store (differs for a prefixed mirror). */
  storeRepo?: string | undefined;
  digest: string;
  /** From the manifest, when known; else from a partial recorded before, else the first answer. */
  size?: number | undefined;
  policy: FillPolicy;
  log: Logger;
  /** Stops the fill (shutdown, a run cancelled); progress is checkpointed. */
  signal?: AbortSignal | undefined;
}

/**
 * The one fetch of a verified blob, for sync, the proxy and peers: bytes go into the store's
 * partial file of the digest, resumed with Range from the bytes it keeps (from this process or one
 * before it, re-hashed), hashed while written, checkpointed, judged once on size and digest, then
 * committed. A source that ignores Range makes the file start over once; bytes that fail the digest
 * are reported to the sources and, when another source may answer, fetched once more from zero. A
 * tail written after the last checkpoint (a crash) is kept; if the blob then fails its digest, only
 * that tail is fetched again. Any number of readers stream the file while it grows; each reader's
 * last byte waits for the verdict.
 */
export class Fill {
  readonly digest: string;
  readonly repo: string;
  readonly storeRepo: string;
  /** Known from the manifest, a recorded partial, or the first answer (undefined: the source never said). */
  size: number | undefined;
  /** Bytes in the file now. */
  written = 0;
  /** Where this fill started: > 0 when bytes kept from before were resumed. */
  resumedFrom = 0;
  /** Body bytes received from sources by this fill. */
  bytesReceived = 0;
  /** Bytes peers of the site sent (kept or discarded). */
  peerBytes = 0;
  /** Requests that continued after a cut. */
  resumes = 0;
  /** The peer the verified bytes came from last (undefined: the upstream). */
  peer: string | undefined;
  state: 'fetching' | 'verified' | 'failed' = 'fetching';
  error: Error | undefined;
  /** Resolves once a source answered (the size is known, if it said) or rejects with the fill's error. */
  readonly ready: Promise<void>;
  /** Settles when the fill is over (committed or failed); never rejects. */
  readonly done: Promise<void>;
  readonly #store: FillStore;
  readonly #source: BlobSource;
  readonly #policy: FillPolicy;
  readonly #log: Logger;
  readonly #abort = new AbortController();
  readonly #signal: AbortSignal;
  readonly #algorithm: string;
  #fh: FileHandle | undefined;
  #refs = 1;
  #hash: Hash;
  /** The hash up to the last checkpoint, while the file keeps an unverified tail [offset, end) after it. */
  #trusted: { offset: number; end: number; hash: Hash } | undefined;
  #path = '';
  readonly #origins = new Map<string, BlobOrigin>();
  #answered = false;
  /** The source of the body being copied (a cut names it). */
  #lastOrigin: BlobOrigin | undefined;
  #sentAny = false;
  #startedOver = false;
  #startOvers = 0;
  #discarded = false;
  #generation = 0;
  #grewAt = Date.now();
  #sinceCheckpoint = 0;
  readonly #wake = new Set<() => void>();
  #resolveReady!: () => void;
  #rejectReady!: (err: Error) => void;

  constructor(opts: FillOptions) {
    this.#store = opts.store;
    this.#source = opts.source;
    this.#policy = opts.policy;
    this.#log = opts.log;
    this.digest = opts.digest;
    this.repo = opts.repo;
    this.storeRepo = opts.storeRepo ?? opts.repo;
    this.size = opts.size;
    this.#algorithm = parseDigest(opts.digest).algorithm;
    this.#hash = createHash(this.#algorithm);
    this.#signal = opts.signal ? AbortSignal.any([opts.signal, this.#abort.signal]) : this.#abort.signal;
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(() => undefined);
    this.done = this.#run().catch(() => undefined);
  }

  /** Resolves when the blob is committed; rejects with the fill's error. */
  async result(): Promise<void> {
    await this.done;
    if (this.state !== 'verified') throw this.error ?? new Error(`fetch of ${this.digest} failed`);
  }

  /** Stops the fetch (shutdown); progress is checkpointed. */
  abort(): void {
    this.#abort.abort();
  }

  /**
   * A reader for one client; the fill outlives it (a client leaving does not stop the fetch).
   * Undefined once the fill is over and its file closed: read the store instead.
   */
  attach(): { size: number | undefined; stream: Fill['stream']; release: () => void } | undefined {
    if (this.#refs === 0 || !this.#fh) return undefined;
    this.#refs++;
    let released = false;
    return {
      size: this.size,
      stream: (start, end, write, signal) => this.stream(start, end, write, signal),
      release: () => {
        if (released) return;
        released = true;
        this.#unref();
      },
    };
  }

  async #run(): Promise<void> {
    const release = this.#store.pin(this.digest);
    let releaseSpace = () => {};
    let first: Answer | undefined;
    try {
      this.size ??= this.#store.partialSize(this.digest);
      if (this.size === undefined) {
        // Nothing says how big the blob is: the first answer does, before the partial is opened.
        first = await this.#request(0, false);
        this.size = first.total;
      }
      const partial = await this.#store.beginPartial(this.digest, this.size, { cache: this.#policy.cache === true });
      this.#path = partial.path;
      this.#fh = await open(partial.path, 'r+');
      const kept = await hashKept(partial.path, partial.durable, partial.offset, this.#algorithm);
      this.#hash = kept.hash;
      this.#trusted = kept.trusted ? { offset: partial.durable, end: partial.offset, hash: kept.trusted } : undefined;
      this.written = this.resumedFrom = partial.offset;
      if (this.written > 0) {
        // Bytes left by an earlier attempt or process came from a source we no longer know.
        this.#origins.set('earlier', { kind: 'upstream', id: 'earlier' });
        this.#log.info({ digest: this.digest, offset: this.written, durable: partial.durable, size: this.size }, 'download resuming from checkpoint');
      }
      if (this.size !== undefined && this.#policy.admit) {
        try {
          releaseSpace = await this.#policy.admit(this.size, this.written);
        } catch (err) {
          first?.body.destroy();
          first?.close?.();
          throw err;
        }
      }
      await this.#fetchAll(first);
      await this.#fh.sync();
      this.state = 'verified';
      this.#notify();
      // Readers keep their descriptor across the rename.
      await this.#store.commitPartial(this.digest, this.written, this.storeRepo);
      await this.#policy.onCommitted?.(this.written);
      this.#log.debug({ digest: this.digest, bytes: this.written, peer: this.peer ?? null }, 'blob fetched and verified');
    } catch (err) {
      this.error = err as Error;
      if (this.state !== 'verified') this.state = 'failed';
      this.#rejectReady(err as Error);
      this.#notify();
      const saved = this.state === 'failed' && (await this.#checkpoint());
      if (this.#signal.aborted && saved) {
        // Shutdown (SIGTERM) or a run cancelled: the next process or run resumes from here.
        this.#log.info({ digest: this.digest, offset: this.written, size: this.size }, 'download checkpointed');
      } else {
        const level = isSatelliteError(err, FetchErrorCode.digestMismatch) ? 'warn' : 'info';
        this.#log[level]({ digest: this.digest, repo: this.repo, err: (err as Error).message, bytes: this.written }, 'blob fetch failed; nothing stored');
      }
      throw err;
    } finally {
      release();
      releaseSpace();
      this.#unref();
    }
  }

  /** Requests until the file holds the whole blob and it verified; throws when the policy gives up. */
  async #fetchAll(first: Answer | undefined): Promise<void> {
    let src = first;
    let failures = 0;
    for (;;) {
      if (!src && this.size !== undefined && this.written >= this.size) {
        // Complete on disk already (kept bytes): the verdict needs no request.
        this.#answered = true;
        this.#resolveReady();
        if (await this.#verify()) return;
        continue;
      }
      const before = this.written;
      try {
        if (!src) {
          const held = this.#policy.held?.('start');
          if (held) throw held;
          src = await this.#request(this.written, this.#answered);
        }
        this.#answered = true;
        await this.#take(src);
        src = undefined;
        if (this.size !== undefined && this.written < this.size) throw fetchError(FetchErrorCode.bodyCut, `source ended ${this.digest} at ${this.written} of ${this.size} bytes`);
        this.size ??= this.written;
        if (await this.#verify()) return;
        failures = 0;
      } catch (caught) {
        if (src) {
          src.body.destroy();
          src.close?.();
          src = undefined;
        }
        // ENOSPC / EROFS become DISK_FULL / STORE_READ_ONLY: permanent (no retry burns WAN).
        const err = this.#store.disk.translate(caught, `blob ${this.digest}`, (this.size ?? this.written) - this.written) as Error;
        if (this.#signal.aborted || this.#policy.permanent(err) || (isSatelliteError(err) && VERDICTS.includes(err.code))) throw err;
        if (!this.#answered && !this.#policy.retryFirst) throw err;
        // A cut after progress resumes at once; only requests that got nowhere back off.
        failures = this.written > before ? 0 : failures + 1;
        const giveUp = (why: string) =>
          this.bytesReceived === 0 ? err : fetchError(FetchErrorCode.resumeFailed, `source cut ${this.digest} at byte ${this.written}${this.size === undefined ? '' : ` of ${this.size}`}; ${why}: ${err.message}`, { cause: err.message });
        if (failures >= this.#policy.attempts) throw giveUp(`${this.#policy.attempts} resume attempts in a row without progress`);
        const silence = this.#policy.silenceMs;
        if (silence !== undefined && Date.now() - this.#grewAt >= silence) throw giveUp(`nothing received for ${silence} ms`);
        const wait = failures === 0 ? 0 : this.#policy.backoffMs(failures);
        const fromPeer = this.#lastOrigin?.kind === 'peer';
        this.#lastOrigin = undefined;
        this.#log.info({ digest: this.digest, offset: this.written, attempt: failures, err: err.message, retryInMs: Math.round(wait) }, fromPeer ? 'blob from peer cut; resuming' : 'upstream cut mid-blob; resuming');
        await sleep(wait, undefined, { signal: this.#signal });
      }
    }
  }

  /** Asks the sources from `offset`; a resume is bounded by the silence deadline, if any. */
  async #request(offset: number, resume: boolean): Promise<Answer> {
    const silence = this.#policy.silenceMs;
    const deadline = resume && silence !== undefined ? deadlineSignal(this.#signal, this.#grewAt + silence - Date.now()) : undefined;
    try {
      const got = await this.#source.open(this.repo, this.digest, { offset, size: this.size, signal: deadline?.signal ?? this.#signal });
      deadline?.answered();
      if (!got) throw new SatelliteError('UPSTREAM_NOT_FOUND', `no source has ${this.digest}`);
      if (resume) {
        this.resumes++;
        this.#policy.onResume?.();
      }
      return { ...got, close: deadline?.close };
    } catch (err) {
      deadline?.close();
      throw err;
    }
  }

  /** Checks where the answer starts and copies its body into the file. */
  async #take(src: Answer): Promise<void> {
    this.#resolveReady();
    if (src.total !== undefined && this.size !== undefined && src.total !== this.size) {
      throw fetchError(FetchErrorCode.sizeMismatch, `${src.origin.kind} says ${this.digest} has ${src.total} bytes, expected ${this.size}`);
    }
    if (src.start !== this.written) {
      if (src.start !== 0) throw fetchError(FetchErrorCode.sizeMismatch, `${src.origin.kind} answered ${this.digest} from byte ${src.start}, not ${this.written}`);
      // Range ignored (200 from byte 0). Starting over once is worth it; a source that ignores Range
      // on a link that keeps cutting would loop forever, and a reader never gets other bytes at an offset.
      if (this.#sentAny || this.#startedOver) {
        throw fetchError(FetchErrorCode.rangeIgnored, `upstream ignored Range for ${this.digest} (answered from byte 0, not ${this.written}) ${this.#sentAny ? 'after clients were sent bytes' : 'again after starting over'}`);
      }
      this.#log.info({ digest: this.digest, bytes: this.written }, 'upstream ignored Range; the fill starts over');
      this.#startedOver = true;
      await this.#restart();
    }
    this.size ??= src.total;
    const origin = src.origin;
    this.#lastOrigin = origin;
    this.#origins.set(`${origin.kind}:${origin.id}`, origin);
    const fh = this.#fh!;
    const onAbort = () => src.body.destroy(this.#signal.reason as Error);
    if (this.#signal.aborted) onAbort();
    else this.#signal.addEventListener('abort', onAbort, { once: true });
    try {
      // Chunk by chunk, and on a cut the bytes already received first: the next Range starts after them.
      await copyKept(src.body, async (chunk) => {
        if (this.size !== undefined && this.written + chunk.length > this.size) {
          throw fetchError(FetchErrorCode.sizeMismatch, `${origin.kind} sent more than ${this.size} bytes for ${this.digest}`);
        }
        await this.#policy.beforeChunk?.(chunk.length, origin, this.#signal);
        let done = 0;
        while (done < chunk.length) done += (await fh.write(chunk, done, chunk.length - done, this.written + done)).bytesWritten;
        // Hash only what is on disk, so the hash always covers exactly [0, written).
        this.#hash.update(chunk);
        this.written += chunk.length;
        this.bytesReceived += chunk.length;
        if (origin.kind === 'peer') this.peerBytes += chunk.length;
        this.#grewAt = Date.now();
        this.#notify();
        this.#sinceCheckpoint += chunk.length;
        if (this.#sinceCheckpoint >= this.#policy.checkpointBytes) await this.#checkpoint();
        // Held (window closed, cap reached) after this chunk is kept: it already crossed the WAN.
        const held = this.#policy.held?.('stream');
        if (held) throw held;
      });
    } finally {
      this.#signal.removeEventListener('abort', onAbort);
      src.close?.();
    }
    this.#signal.throwIfAborted();
    this.peer = origin.kind === 'peer' ? origin.id : undefined;
  }

  /** True when the file hashes to the digest; else sets up the next attempt or throws the verdict. */
  async #verify(): Promise<boolean> {
    const actual = `${this.#algorithm}:${this.#hash.copy().digest('hex')}`;
    if (actual === this.digest) return true;
    if (this.#trusted) {
      // The tail kept from before a crash was not what was written (a power cut): fetch only it again.
      const tail = this.#trusted;
      this.#trusted = undefined;
      this.#log.warn({ digest: this.digest, tail: tail.end - tail.offset, offset: tail.offset }, 'kept tail failed the digest; fetching it again from the last checkpoint');
      await this.#repairTail(tail);
      return false;
    }
    const from = [...this.#origins.values()];
    const err = fetchError(FetchErrorCode.digestMismatch, `bytes for ${this.digest} from ${from.map((o) => o.id).join(' and ')} hash to ${actual}: discarded`, { expected: this.digest, actual, sources: from });
    // Every source that contributed bytes is suspect for this digest (a resumed fill mixes sources).
    const again = this.#source.reportBad?.(this.digest, from) ?? false;
    if (again && !this.#sentAny && this.#startOvers++ === 0) {
      this.#log.warn({ digest: this.digest, sources: from }, 'blob failed verification; fetching it from another source');
      await this.#restart();
      return false;
    }
    this.#discarded = true;
    await this.#store.discardPartial(this.digest);
    throw err;
  }

  /**
   * Rewrites the unverified tail [offset, end) with bytes asked for again from `offset`, reading
   * only as far as `end`; the bytes after it (fetched by this process) are re-hashed from disk.
   * Cut short, the file keeps what was rewritten and the fill goes on from there.
   */
  async #repairTail(tail: { offset: number; end: number; hash: Hash }): Promise<void> {
    const size = this.written;
    const fh = this.#fh!;
    // Readers wait below the tail until it is rewritten; those that were sent tail bytes fail.
    this.#generation++;
    this.written = tail.offset;
    const hash = tail.hash;
    let pos = tail.offset;
    let src: Answer | undefined;
    try {
      src = await this.#request(tail.offset, true);
      if (src.start !== tail.offset) throw new Error(`answered from byte ${src.start}`);
      for await (const chunk of src.body as AsyncIterable<Buffer>) {
        const part = chunk.subarray(0, Math.min(chunk.length, tail.end - pos));
        await this.#policy.beforeChunk?.(part.length, src.origin, this.#signal);
        let done = 0;
        while (done < part.length) done += (await fh.write(part, done, part.length - done, pos + done)).bytesWritten;
        hash.update(part);
        pos += part.length;
        this.bytesReceived += part.length;
        if (pos >= tail.end) break;
      }
    } catch (err) {
      this.#log.info({ digest: this.digest, offset: pos, err: (err as Error).message }, 'tail refetch cut; the fill goes on from there');
    } finally {
      src?.body.destroy();
      src?.close?.();
    }
    this.#hash = hash;
    if (pos >= tail.end) {
      await feed(hash, this.#path, tail.end, size);
      this.written = size;
    } else {
      this.written = pos;
      await fh.truncate(pos);
    }
    this.#notify();
  }

  /** Back to an empty file; readers that were sent bytes of it fail. */
  async #restart(): Promise<void> {
    // Synchronously first: from here no reader may send what the file held.
    this.#generation++;
    this.written = 0;
    this.#origins.clear();
    this.#trusted = undefined;
    this.#hash = createHash(this.#algorithm);
    await this.#fh!.truncate(0);
  }

  /** Makes the bytes written durable and records them (read the offset before the fsync). */
  async #checkpoint(): Promise<boolean> {
    this.#sinceCheckpoint = 0;
    const fh = this.#fh;
    if (!fh || this.#discarded) return false;
    const durable = this.written;
    return fh
      .sync()
      .then(() => this.#store.checkpointPartial(this.digest, durable))
      .then(
        () => true,
        (err: unknown) => {
          this.#log.warn({ err, digest: this.digest }, 'checkpoint not saved');
          return false;
        },
      );
  }

  /**
   * Sends [start, end] (end inclusive, undefined: to the end) of the growing file to `write`, as
   * it grows; the response's last byte waits for the verdict. Resolves with the bytes sent.
   */
  async stream(start: number, end: number | undefined, write: (chunk: Buffer) => Promise<void>, signal: AbortSignal): Promise<number> {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    let pos = start;
    let sent = 0;
    let generation = this.#generation;
    for (;;) {
      if (signal.aborted) throw new SatelliteError('CLIENT_GONE', 'client went away');
      if (this.state === 'failed') throw this.error ?? new Error('blob fetch failed');
      // Nothing sent yet: a file that started over is simply read from the start again.
      if (sent === 0) generation = this.#generation;
      if (this.#generation !== generation) throw new SatelliteError('FETCH_RESTARTED', `the fetch of ${this.digest} started over after bytes were sent`);
      const verified = this.state === 'verified';
      // One past the last byte this response may send now: everything written, except that the
      // response's final byte waits for verification (unknown length: hold back one byte).
      const last = end ?? (this.size !== undefined ? this.size - 1 : undefined);
      let limit: number;
      if (verified) limit = last === undefined ? this.written : Math.min(this.written, last + 1);
      else limit = last === undefined ? this.written - 1 : Math.min(this.written, last);
      if (verified && pos >= limit) return sent;
      if (pos < limit) {
        const before = this.#generation;
        const n = await this.#fh!.read(buf, 0, Math.min(buf.length, limit - pos), pos);
        // The file started over while we read: nothing of it is sent.
        if (before !== this.#generation) continue;
        if (n.bytesRead === 0) throw new Error(`partial file of ${this.digest} ended at ${pos}`);
        this.#sentAny = true;
        await write(buf.subarray(0, n.bytesRead));
        pos += n.bytesRead;
        sent += n.bytesRead;
        continue;
      }
      await this.#changed(signal);
    }
  }

  #changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        this.#wake.delete(wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      this.#wake.add(wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }

  #notify(): void {
    for (const wake of [...this.#wake]) wake();
  }

  #unref(): void {
    if (--this.#refs > 0) return;
    const fh = this.#fh;
    this.#fh = undefined;
    void fh?.close().catch(() => undefined);
  }
}

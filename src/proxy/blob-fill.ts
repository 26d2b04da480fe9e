import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { open, type FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import { copyKept, FetchErrorCode, fetchError, type BlobSource } from '../fetch/index.ts';
import { parseDigest } from '../lib/digest.ts';
import { SatelliteError } from '../lib/errors.ts';
import { unlinkIfExists } from '../lib/fs-atomic.ts';
import { isDiskError } from '../store/index.ts';
import type { ProxiedBlob } from '../registry/index.ts';
import type { ProxyStore, ProxyUpstream } from './ports.ts';
import { NO_RESUME, ResumeBudget, type ResumePolicy } from './resume.ts';

/** Bytes per read for one client stream from the growing file. */
const READ_CHUNK = 256 * 1024;

/** One response being copied into the fill: a peer's or the upstream's. */
interface Source {
  body: Readable;
  start: number;
  total: number | undefined;
  /** The peer's id; undefined for the upstream. */
  peer: string | undefined;
  /** Called once the body is over (unlinks a resume's deadline signal). */
  close?: () => void;
}

/**
 * One fetch of one blob into a temp file, read by any number of clients while it grows. The
 * source (a peer of the site that has the blob, else the upstream) is read once; each client reads
 * the file at its own pace (the file is the only buffer, so memory stays at one chunk per client).
 * The digest is checked over exactly the bytes written before the file is committed; each
 * client's last byte waits for that check. A peer that is cut mid-body is resumed from the
 * upstream; one whose bytes are wrong is reported, and if no client was sent a byte yet the fill
 * starts over from the upstream (else the fill fails and the client's next request refetches).
 * An upstream body cut mid-way (reset, early end, idle timeout) is resumed with Range from the
 * bytes written, bounded by the ResumePolicy; clients reading the file never notice.
 */
export class BlobFill {
  readonly digest: string;
  /** Repository in the store (the blob is linked there). */
  readonly repo: string;
  /** The same repository's name at the upstream (differs for prefixed mirrors). */
  readonly upstreamRepo: string;
  /** From the upstream's headers; undefined until known (and if the upstream never said). */
  size: number | undefined;
  written = 0;
  /** The peer the verified bytes came from (undefined: the upstream). */
  peer: string | undefined;
  /** Bytes a peer sent for this fill (kept or discarded). */
  peerBytes = 0;
  /** Upstream responses that continued this fill after a cut. */
  upstreamResumes = 0;
  state: 'fetching' | 'verified' | 'failed' = 'fetching';
  error: Error | undefined;
  /** Resolves when the upstream answered (size known) or rejects with its error. */
  readonly ready: Promise<void>;
  /** Settles when the fill is over (committed or failed); never rejects. */
  readonly done: Promise<void>;
  readonly #store: ProxyStore;
  readonly #log: Logger;
  readonly #path: string;
  readonly #abort = new AbortController();
  #fh: FileHandle | undefined;
  #refs = 1;
  readonly #sources: BlobSource | undefined;
  /** Peers whose bytes are in the file now. */
  readonly #peers = new Set<string>();
  #hash: Hash;
  /** Bumped when the file starts over; a read from before is discarded. */
  #generation = 0;
  /** Some client was sent a byte of this fill: it can no longer start over. */
  #sentAny = false;
  #wake = new Set<() => void>();
  readonly #budget: ResumeBudget;
  /** A resume answered from byte 0 already made the file start over. */
  #startedOver = false;
  #resolveReady!: () => void;
  #rejectReady!: (err: Error) => void;

  constructor(
    store: ProxyStore,
    sources: { upstream: ProxyUpstream; peers?: BlobSource | undefined },
    repo: { store: string; upstream: string },
    digest: string,
    log: Logger,
    resume: ResumePolicy = NO_RESUME,
  ) {
    this.#budget = new ResumeBudget(resume);
    this.#store = store;
    this.#sources = sources.peers;
    this.#hash = createHash(parseDigest(digest).algorithm);
    this.#log = log;
    this.repo = repo.store;
    this.upstreamRepo = repo.upstream;
    this.digest = digest;
    this.#path = store.tempPath();
    this.ready = new Promise((resolve, reject) => {
      this.#resolveReady = resolve;
      this.#rejectReady = reject;
    });
    this.ready.catch(() => undefined);
    this.done = this.#run(sources.upstream, sources.peers).catch(() => undefined);
  }

  /**
   * A reader for one client; the fill outlives it (a client leaving does not stop the fetch).
   * Undefined once the fill is over and its file closed: read the store instead.
   */
  attach(): ProxiedBlob | undefined {
    if (this.#refs === 0) return undefined;
    this.#refs++;
    let released = false;
    return {
      size: this.size,
      stream: (start, end, write, signal) => this.#stream(start, end, write, signal),
      release: () => {
        if (released) return;
        released = true;
        this.#unref();
      },
    };
  }

  /** Stops the fetch (satellite shutdown). */
  abort(): void {
    this.#abort.abort();
  }

  async #run(upstream: ProxyUpstream, peers: BlobSource | undefined): Promise<void> {
    const release = this.#store.pin(this.digest);
    // Bytes this fill still has to write, promised so sync and other fills do not count them as free.
    let releaseSpace = () => {};
    try {
      this.#fh = await open(this.#path, 'wx+');
      let src = await this.#open(upstream, peers, 0);
      this.size = src.total;
      if (this.size !== undefined) await this.#admit(this.size, src);
      releaseSpace = this.#store.disk.reserve(() => (this.size ?? 0) - this.written);
      this.#resolveReady();
      for (let restarts = 0; ; ) {
        const failure = await this.#copy(src);
        src.close?.();
        if (!failure) break;
        const err = failure.err;
        if (this.#abort.signal.aborted || isDiskError(err)) throw err;
        if (src.peer === undefined) {
          if (failure.verdict) throw err;
          // The upstream was cut: continue from the bytes written (the running hash stays valid).
          src = await this.#resumeUpstream(upstream, err);
          continue;
        }
        // A peer that failed before any client got a byte: the upstream, in the same fill. A peer
        // cut or stalled mid-body: the upstream resumes from the bytes written (all hashed at the end).
        const again = restarts++ === 0;
        const resumable = again && src.peer !== undefined && !failure.verdict;
        const restart = !resumable && again && this.#peers.size > 0 && !this.#sentAny;
        if (!restart && !resumable) throw err;
        this.#log.info({ digest: this.digest, peer: src.peer, bytes: this.written, err: err.message }, restart ? 'blob from peer failed; fetching it again from the upstream' : 'blob from peer cut; resuming from the upstream');
        if (restart) await this.#restart();
        src = await this.#open(upstream, undefined, this.written);
        if (src.start !== this.written) throw fetchError(FetchErrorCode.sizeMismatch, `upstream answered ${this.digest} from byte ${src.start}, not ${this.written}`);
        if (src.total !== undefined && this.size !== undefined && src.total !== this.size) {
          throw fetchError(FetchErrorCode.sizeMismatch, `upstream says ${this.digest} has ${src.total} bytes, the peer ${this.size}`);
        }
        this.size ??= src.total;
      }
      await this.#fh.sync();
      this.size ??= this.written;
      this.state = 'verified';
      this.#notify();
      // Readers keep their descriptor across the rename; a concurrent sync commit of the same
      // digest leaves our file where it is, removed below.
      await this.#store.commitVerifiedFile(this.#path, this.digest, this.written, this.repo);
      await this.#store.cacheIndex.recordBlob(this.digest, this.written);
      this.#log.debug({ digest: this.digest, bytes: this.written, peer: this.peer ?? null }, this.peer ? 'blob cached from a peer' : 'blob cached from upstream');
    } catch (err) {
      this.error = err as Error;
      if (this.state !== 'verified') this.state = 'failed';
      this.#rejectReady(err as Error);
      this.#notify();
      const level = (err as SatelliteError).code === FetchErrorCode.digestMismatch ? 'warn' : 'info';
      this.#log[level]({ digest: this.digest, repo: this.repo, err: (err as Error).message, bytes: this.written }, 'blob fetch failed; nothing stored');
      throw err;
    } finally {
      release();
      releaseSpace();
      await unlinkIfExists(this.#path);
      this.#unref();
    }
  }

  /**
   * A fill that cannot fit is refused before its body is read (the client gets 507 DISK_FULL): the
   * cache is evicted first, then the other pressure reliefs; still short, the fetch is dropped.
   */
  async #admit(size: number, src: Source): Promise<void> {
    const what = `blob ${this.digest}`;
    try {
      try {
        this.#store.admitWrite(size, what);
      } catch (err) {
        if (!isDiskError(err) || this.#store.disk.readOnly) throw err;
        await this.#store.relieve(size);
        this.#store.admitWrite(size, what);
      }
    } catch (err) {
      src.body.destroy();
      src.close?.();
      throw err;
    }
  }

  /** A peer that has the blob (when offset is 0 and peers are asked), else the upstream. */
  async #open(upstream: ProxyUpstream, peers: BlobSource | undefined, offset: number): Promise<Source> {
    const signal = this.#abort.signal;
    if (peers && offset === 0) {
      const got = await peers.open(this.repo, this.digest, { offset: 0, signal });
      if (got) return { body: got.body, start: got.start, total: got.total, peer: got.origin.id };
    }
    const res = await upstream.fetchBlob(this.upstreamRepo, this.digest, { signal, ...(offset > 0 ? { offset } : {}) });
    return { body: res.body, start: res.start, total: res.total, peer: undefined };
  }

  /**
   * Appends the source's body to the file and, once the blob is complete, checks size and digest.
   * Undefined when verified; a failure otherwise (verdict: the bytes were wrong, not just cut).
   */
  async #copy(src: Source): Promise<{ err: Error; verdict: boolean } | undefined> {
    if (src.peer !== undefined) this.#peers.add(src.peer);
    const tooMuch = new Error('too much');
    try {
      // Chunk by chunk, and on a cut the bytes already received first: a resume starts after them.
      await copyKept(src.body, async (chunk) => {
        if (this.size !== undefined && this.written + chunk.length > this.size) throw tooMuch;
        let done = 0;
        while (done < chunk.length) done += (await this.#fh!.write(chunk, done, chunk.length - done, this.written + done)).bytesWritten;
        this.#hash.update(chunk);
        this.written += chunk.length;
        this.#budget.grew();
        if (src.peer !== undefined) this.peerBytes += chunk.length;
        this.#notify();
      });
    } catch (caught) {
      src.body.destroy();
      if (caught === tooMuch) {
        return { err: fetchError(FetchErrorCode.sizeMismatch, `${src.peer ?? 'upstream'} sent more than ${this.size} bytes for ${this.digest}`), verdict: true };
      }
      if (this.#abort.signal.aborted) throw caught;
      // Disk full or read-only: resuming would fetch bytes that cannot be kept.
      const err = this.#store.disk.translate(caught, `blob ${this.digest}`, (this.size ?? this.written) - this.written);
      return { err: err as Error, verdict: isDiskError(err) };
    }
    if (this.size !== undefined && this.written !== this.size) {
      const err = fetchError(FetchErrorCode.sizeMismatch, `${src.peer ?? 'upstream'} ended ${this.digest} at ${this.written} of ${this.size} bytes`);
      return { err, verdict: false };
    }
    const actual = `${parseDigest(this.digest).algorithm}:${this.#hash.digest('hex')}`;
    if (actual === this.digest) {
      this.peer = src.peer;
      return undefined;
    }
    const err = fetchError(FetchErrorCode.digestMismatch, `bytes for ${this.digest} from ${[...this.#peers, ...(src.peer ? [] : ['upstream'])].join(' and ')} hash to ${actual}: discarded`, { expected: this.digest, actual });
    // Every peer that contributed bytes is suspect for this digest (a resumed fill mixes sources).
    this.#sources?.reportBad?.(this.digest, [...this.#peers].map((id) => ({ kind: 'peer' as const, id })));
    if (this.#peers.size === 0) throw err;
    return { err, verdict: true };
  }

  /**
   * The upstream body was cut (`cause`): asks again from the bytes written (bounded by the
   * policy). A 200 (Range ignored) starts the file over if no client has been sent a byte yet,
   * else fails the fill: a client never gets other bytes at offsets it already has.
   */
  async #resumeUpstream(upstream: ProxyUpstream, cause: Error): Promise<Source> {
    const to = { upstream, repo: this.upstreamRepo, digest: this.digest, written: this.written, size: this.size, signal: this.#abort.signal, log: this.#log };
    const { res, close } = await this.#budget.request(to, cause);
    const fail = (err: Error) => {
      res.body.destroy();
      close();
      return err;
    };
    if (res.total !== undefined && this.size !== undefined && res.total !== this.size) {
      throw fail(fetchError(FetchErrorCode.sizeMismatch, `upstream now says ${this.digest} has ${res.total} bytes, not ${this.size}`));
    }
    if (res.start !== this.written) {
      // Answered from byte 0 (fetchBlob rejects any other wrong start). Starting over once is
      // worth it; an upstream that ignores Range on a link that keeps cutting would loop forever.
      if (this.#sentAny || this.#startedOver) throw fail(fetchError(FetchErrorCode.rangeIgnored, `upstream ignored Range for ${this.digest} (answered from byte ${res.start}, not ${this.written}) ${this.#sentAny ? 'after clients were sent bytes' : 'again after starting over'}`));
      this.#log.info({ digest: this.digest, bytes: this.written }, 'upstream ignored Range; the fill starts over');
      this.#startedOver = true;
      await this.#restart();
      this.#budget.restarted();
    }
    this.size ??= res.total;
    this.upstreamResumes++;
    this.#budget.policy.onResume?.();
    return { body: res.body, start: res.start, total: res.total, peer: undefined, close };
  }

  /** Back to an empty file (only while no client has been sent a byte). */
  async #restart(): Promise<void> {
    // Synchronously first: from here no reader may send what the file held.
    this.#generation++;
    this.written = 0;
    this.#peers.clear();
    this.#hash = createHash(parseDigest(this.digest).algorithm);
    await this.#fh!.truncate(0);
  }

  async #stream(start: number, end: number | undefined, write: (chunk: Buffer) => Promise<void>, signal: AbortSignal): Promise<number> {
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    let pos = start;
    let sent = 0;
    for (;;) {
      if (signal.aborted) throw new SatelliteError('CLIENT_GONE', 'client went away');
      if (this.state === 'failed') throw this.error ?? new Error('blob fetch failed');
      const verified = this.state === 'verified';
      // One past the last byte this response may send now: everything written, except that the
      // response's final byte waits for verification (unknown length: hold back one byte).
      const last = end ?? (this.size !== undefined ? this.size - 1 : undefined);
      let limit: number;
      if (verified) limit = last === undefined ? this.written : Math.min(this.written, last + 1);
      else limit = last === undefined ? this.written - 1 : Math.min(this.written, last);
      if (verified && pos >= limit) return sent;
      if (pos < limit) {
        const generation = this.#generation;
        const n = await this.#fh!.read(buf, 0, Math.min(buf.length, limit - pos), pos);
        // The file started over while we read (nothing was sent yet, so pos is still start).
        if (generation !== this.#generation) continue;
        if (n.bytesRead === 0) throw new Error(`temp file of ${this.digest} ended at ${pos}`);
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

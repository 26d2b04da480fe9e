import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import { parseDigest } from '../lib/digest.ts';
import { SatelliteError } from '../lib/errors.ts';
import { unlinkIfExists } from '../lib/fs-atomic.ts';
import type { ProxiedBlob } from '../registry/index.ts';
import { ProxyErrorCode, proxyError } from './errors.ts';
import type { ProxyStore, ProxyUpstream } from './ports.ts';

/** Bytes per read for one client stream from the growing file. */
const READ_CHUNK = 256 * 1024;

/**
 * One upstream fetch of one blob into a temp file, read by any number of clients while it grows.
 * The upstream is read once; each client reads the file at its own pace (the file is the only
 * buffer, so memory stays at one chunk per client). The digest is checked over exactly the bytes
 * written before the file is committed; each client's last byte waits for that check.
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
  #wake = new Set<() => void>();
  #resolveReady!: () => void;
  #rejectReady!: (err: Error) => void;

  constructor(store: ProxyStore, upstream: ProxyUpstream, repo: { store: string; upstream: string }, digest: string, log: Logger) {
    this.#store = store;
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
    this.done = this.#run(upstream).catch(() => undefined);
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

  async #run(upstream: ProxyUpstream): Promise<void> {
    const release = this.#store.pin(this.digest);
    const { algorithm } = parseDigest(this.digest);
    try {
      this.#fh = await open(this.#path, 'wx+');
      const res = await upstream.fetchBlob(this.upstreamRepo, this.digest, { signal: this.#abort.signal });
      this.size = res.total;
      this.#resolveReady();
      const hash = createHash(algorithm);
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        if (this.size !== undefined && this.written + chunk.length > this.size) {
          res.body.destroy();
          throw proxyError(ProxyErrorCode.sizeMismatch, `upstream sent more than ${this.size} bytes for ${this.digest}`);
        }
        let done = 0;
        while (done < chunk.length) done += (await this.#fh.write(chunk, done, chunk.length - done, this.written + done)).bytesWritten;
        hash.update(chunk);
        this.written += chunk.length;
        this.#notify();
      }
      if (this.size !== undefined && this.written !== this.size) {
        throw proxyError(ProxyErrorCode.sizeMismatch, `upstream ended ${this.digest} at ${this.written} of ${this.size} bytes`);
      }
      const actual = `${algorithm}:${hash.digest('hex')}`;
      if (actual !== this.digest) {
        throw proxyError(ProxyErrorCode.digestMismatch, `upstream bytes for ${this.digest} hash to ${actual}: discarded`, { expected: this.digest, actual });
      }
      await this.#fh.sync();
      this.size ??= this.written;
      this.state = 'verified';
      this.#notify();
      // Readers keep their descriptor across the rename; a concurrent sync commit of the same
      // digest leaves our file where it is, removed below.
      await this.#store.commitVerifiedFile(this.#path, this.digest, this.written, this.repo);
      await this.#store.cacheIndex.recordBlob(this.digest, this.written);
      this.#log.debug({ digest: this.digest, bytes: this.written }, 'blob cached from upstream');
    } catch (err) {
      this.error = err as Error;
      if (this.state !== 'verified') this.state = 'failed';
      this.#rejectReady(err as Error);
      this.#notify();
      const level = (err as SatelliteError).code === ProxyErrorCode.digestMismatch ? 'warn' : 'info';
      this.#log[level]({ digest: this.digest, repo: this.repo, err: (err as Error).message, bytes: this.written }, 'blob fetch failed; nothing stored');
      throw err;
    } finally {
      release();
      await unlinkIfExists(this.#path);
      this.#unref();
    }
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
        const n = await this.#fh!.read(buf, 0, Math.min(buf.length, limit - pos), pos);
        if (n.bytesRead === 0) throw new Error(`temp file of ${this.digest} ended at ${pos}`);
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

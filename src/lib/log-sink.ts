import { fstatSync, write as fsWrite, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { isatty } from 'node:tty';

/** What the log destination is, as seen through its file descriptor at start. */
export type LogDestinationKind = 'pipe' | 'file' | 'tty' | 'other' | 'none';

/**
 * The log's counters, for the status endpoints and (later) metrics. Read-only snapshot.
 * - `state`: `ok` writes go through; `backlogged` lines wait for a slow reader; `failing` the last
 *   write failed (ENOSPC, EIO, EAGAIN…) and is retried; `closed` the reader is gone (EPIPE) or there
 *   is no stdout: every line is dropped from now on.
 */
export interface LogSinkStats {
  destination: LogDestinationKind;
  state: 'ok' | 'backlogged' | 'failing' | 'closed';
  /** Lines dropped since start because the buffer was full or the destination is gone. */
  droppedLines: number;
  droppedBytes: number;
  /** Bytes waiting for the destination now, and the most it may hold (log.bufferBytes). */
  bufferedBytes: number;
  bufferBytes: number;
  /** Error code of the last failed write (ENOSPC, EPIPE…), null if none yet. */
  lastError: string | null;
}

/** The small interface metrics and status read the log counters through. */
export interface LogCounters {
  stats(): LogSinkStats;
}

export interface LogSinkOptions {
  /** Most bytes held for a destination that cannot keep up; past it new lines are dropped. */
  bufferBytes: number;
  /** Default 1 (stdout). */
  fd?: number;
  /** Wait before retrying a failed write (ENOSPC, EIO); default 1000 ms. */
  retryMs?: number;
}

/** Largest single write handed to the destination (docker's log copier reads 16 KiB at a time). */
const MAX_WRITE = 64 * 1024;
/** Errors after which the destination never comes back: the reader closed, or no stdout at all. */
const GONE = new Set(['EPIPE', 'ECONNRESET', 'EBADF', 'ERR_STREAM_DESTROYED', 'ERR_SOCKET_CLOSED']);

/**
 * A pino destination that never blocks the event loop and never grows past `bufferBytes`.
 *
 * Why not pino's default (sonic-boom 4.2): its async mode writes a pipe with fs.write on the libuv
 * thread pool, and a pipe nobody reads blocks that thread while lines pile up in memory without
 * bound; its exit flush (`flushSync`) retries every error but EAGAIN/EBUSY forever with a 100 ms
 * atomic sleep, so one ENOSPC hangs the process in a futex wait; and any error but EPIPE is
 * re-emitted with no listener. Here:
 * - a pipe or socket (journald, docker, `| tee`) is written through a non-blocking libuv stream;
 * - a file or terminal through async fs.write, one write at a time;
 * - lines that do not fit in the buffer are dropped and counted; a failed write is retried after
 *   `retryMs`; once everything held is written again, `onRecovered(n)` reports the n lines lost
 *   (the logger logs "n log lines dropped");
 * - EPIPE (reader gone) closes the sink for good: lines are counted, the process carries on;
 * - at exit, what is still held gets one non-blocking attempt, no retry.
 */
export class LogSink implements LogCounters {
  readonly #fd: number;
  readonly #max: number;
  readonly #retryMs: number;
  readonly #kind: LogDestinationKind;
  readonly #socket: Socket | undefined;
  #queue: string[] = [];
  #queuedBytes = 0;
  /** The chunk handed to the destination and not yet confirmed written. */
  #inFlight: Buffer | undefined;
  #retry: NodeJS.Timeout | undefined;
  #failing = false;
  #closed = false;
  #dropped = 0;
  #droppedBytes = 0;
  #unreported = 0;
  #lastError: string | null = null;
  /** Called once the destination took everything again after lines were dropped. */
  onRecovered: ((droppedLines: number) => void) | undefined;

  constructor(opts: LogSinkOptions) {
    this.#fd = opts.fd ?? 1;
    this.#max = opts.bufferBytes;
    this.#retryMs = opts.retryMs ?? 1000;
    this.#kind = kindOf(this.#fd);
    if (this.#kind === 'none') {
      this.#closed = true;
      this.#lastError = 'EBADF';
    } else if (this.#kind === 'pipe') {
      // libuv opens the fd non-blocking: a full pipe queues here (bounded below), never blocks.
      const socket = new Socket({ fd: this.#fd, readable: false, writable: true });
      socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(err));
      // Pending writes must not keep a finished process alive.
      socket.unref();
      this.#socket = socket;
    }
    process.once('exit', () => this.#flushAtExit());
  }

  /** pino calls this with one serialized line (newline included). Never throws, never blocks. */
  write(line: string): boolean {
    const bytes = Buffer.byteLength(line);
    if (this.#closed || this.#buffered() + bytes > this.#max) {
      this.#dropped++;
      this.#droppedBytes += bytes;
      this.#unreported++;
      return true;
    }
    this.#queue.push(line);
    this.#queuedBytes += bytes;
    this.#next();
    return true;
  }

  stats(): LogSinkStats {
    const buffered = this.#buffered();
    return {
      destination: this.#kind,
      state: this.#closed ? 'closed' : this.#failing ? 'failing' : buffered > 0 ? 'backlogged' : 'ok',
      droppedLines: this.#dropped,
      droppedBytes: this.#droppedBytes,
      bufferedBytes: buffered,
      bufferBytes: this.#max,
      lastError: this.#lastError,
    };
  }

  #buffered(): number {
    return this.#queuedBytes + (this.#inFlight?.length ?? 0);
  }

  /** Hands the next chunk to the destination unless one is in flight or a retry is waiting. */
  #next(): void {
    if (this.#inFlight || this.#retry || this.#closed) return;
    if (this.#queue.length === 0) {
      this.#report();
      return;
    }
    this.#inFlight = this.#take();
    this.#send();
  }

  #send(): void {
    const chunk = this.#inFlight;
    if (!chunk) return;
    if (this.#socket) {
      this.#socket.write(chunk, (err) => {
        // on error the socket's 'error' listener runs #fail
        if (!err) this.#written(chunk.length);
      });
    } else {
      fsWrite(this.#fd, chunk, 0, chunk.length, null, (err, n) => {
        if (err) this.#fail(err);
        else this.#written(n);
      });
    }
  }

  /** Up to MAX_WRITE bytes of whole lines from the queue (at least one line). */
  #take(): Buffer {
    let bytes = 0;
    let count = 0;
    for (const line of this.#queue) {
      const b = Buffer.byteLength(line);
      if (count > 0 && bytes + b > MAX_WRITE) break;
      bytes += b;
      count++;
    }
    const lines = this.#queue.splice(0, count);
    this.#queuedBytes -= bytes;
    return Buffer.from(lines.join(''));
  }

  #written(n: number): void {
    const chunk = this.#inFlight;
    if (!chunk || this.#closed) return;
    this.#failing = false;
    if (n < chunk.length) {
      // A short write (a file filling up): the rest goes next, as bytes (it may end mid-character).
      this.#inFlight = chunk.subarray(n);
      this.#send();
      return;
    }
    this.#inFlight = undefined;
    // Works again: once there is room for new lines, say how many were lost.
    if (this.#buffered() <= this.#max / 2) this.#report();
    this.#next();
  }

  #report(): void {
    if (this.#unreported === 0) return;
    const n = this.#unreported;
    this.#unreported = 0;
    this.onRecovered?.(n);
  }

  #fail(err: NodeJS.ErrnoException): void {
    if (this.#closed) return;
    this.#lastError = err.code ?? err.message;
    if (this.#socket || GONE.has(this.#lastError)) {
      // The reader is gone (a socket is destroyed after any error) and fd 1 cannot be reopened:
      // count what is held as dropped and keep serving.
      this.#closed = true;
      this.#socket?.destroy();
      this.#dropped += this.#queue.length + (this.#inFlight ? 1 : 0);
      this.#droppedBytes += this.#buffered();
      this.#queue = [];
      this.#queuedBytes = 0;
      this.#inFlight = undefined;
      if (this.#retry) clearTimeout(this.#retry);
      return;
    }
    // ENOSPC, EIO, EAGAIN on a file: keep what is held, try again later; new lines queue up to the cap.
    this.#failing = true;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#send();
    }, this.#retryMs);
    this.#retry.unref();
  }

  /** One non-blocking attempt at what is still queued; never retries, never throws. */
  #flushAtExit(): void {
    // A chunk still in flight would interleave with this write.
    if (this.#closed || this.#inFlight || this.#queue.length === 0) return;
    try {
      writeSync(this.#fd, this.#queue.join(''));
    } catch {
      // full, gone or would block: the lines are lost, as they would be anyway
    }
  }
}

function kindOf(fd: number): LogDestinationKind {
  try {
    const st = fstatSync(fd);
    if (st.isFIFO() || st.isSocket()) return 'pipe';
    if (st.isFile()) return 'file';
    if (st.isCharacterDevice()) return isatty(fd) ? 'tty' : 'other';
    return 'other';
  } catch {
    return 'none';
  }
}

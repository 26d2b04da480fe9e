import { fstatSync, write as fsWrite, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { isatty } from 'node:tty';

/** What the log destination is, as seen through its file descriptor at start. */
export type LogDestinationKind = 'pipe' | 'file' | 'tty' | 'other' | 'none';

/**
 * The log's counters, for the status endpoints and (later) metrics. Read-only snapshot.
 * - `state`: `ok` writes go through; `backlogged` lines wait for a slow reader; `failing` the last
 *   write failed (ENOSPC, EIO…) and is retried; `closed` the reader is gone (EPIPE) or there
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

/** Largest single write: whole lines up to a Linux pipe's default capacity. */
const MAX_WRITE = 64 * 1024;
/** How often a full pipe is tried again. */
const PIPE_POLL_MS = 25;
/** Errors after which the destination never comes back: the reader closed, or no stdout at all. */
const GONE = new Set(['EPIPE', 'ECONNRESET', 'EBADF']);

/**
 * A pino destination that never blocks the event loop and never holds more than `bufferBytes`.
 *
 * Why not pino's default (sonic-boom 4.2 on fd 1): its async mode writes a pipe with fs.write on
 * the libuv thread pool, and a pipe nobody reads blocks that thread while every later line piles
 * up in memory without bound; its exit flush (`flushSync`) retries every error but EAGAIN/EBUSY
 * forever with a 100 ms atomic sleep, so one ENOSPC re-emitted as an unhandled 'error' ends in a
 * process stuck in a futex wait. Here:
 * - a pipe or socket (journald, docker, `| tee`) is made non-blocking and written with writeSync:
 *   a full pipe answers EAGAIN at once and is tried again every 25 ms from an unref'd timer, so no
 *   pending write keeps a stopping process alive;
 * - a file or terminal is written with async fs.write, one write at a time;
 * - lines that do not fit in the buffer are dropped and counted; a failed write (ENOSPC, EIO) is
 *   retried after `retryMs`; once the destination takes lines again, `onRecovered(n)` reports the
 *   n lines lost (the logger logs "n log lines dropped");
 * - EPIPE (reader gone) closes the sink for good: lines are counted, the process carries on;
 * - at exit, what is still held gets one non-blocking attempt, no retry.
 */
export class LogSink implements LogCounters {
  readonly #fd: number;
  readonly #max: number;
  readonly #retryMs: number;
  readonly #kind: LogDestinationKind;
  #queue: string[] = [];
  #queuedBytes = 0;
  /** The chunk taken from the queue and not yet fully written (in flight on the thread pool for a file). */
  #inFlight: Buffer | undefined;
  #writing = false;
  /** A pump is due at the end of this turn of the event loop (lines of one turn share a write). */
  #pumpScheduled = false;
  /** Lines in #inFlight (one write carries several), for the drop count when it fails. */
  #inFlightLines = 0;
  /** A pipe made non-blocking: written with writeSync (EAGAIN when full), else with async fs.write. */
  #nonBlocking = false;
  #retry: NodeJS.Timeout | undefined;
  #failing = false;
  #closed = false;
  #dropped = 0;
  #droppedBytes = 0;
  #unreported = 0;
  #lastError: string | null = null;
  /** Called once the destination takes lines again after some were dropped. */
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
      // Opening a libuv stream on the fd sets O_NONBLOCK (as process.stdout does for a pipe); the
      // handle is unref'd and never written through, and libuv never closes fds 0-2.
      try {
        new Socket({ fd: this.#fd, readable: false, writable: true }).unref();
        this.#nonBlocking = true;
      } catch {
        // not a stream libuv can open: written like a file, on the thread pool
      }
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
    // Lines written in one turn go out in one write (one syscall, not one per request line).
    if (!this.#pumpScheduled) {
      this.#pumpScheduled = true;
      // Ref'd: an unref'd immediate runs only when something else wakes the event loop, so an
      // idle process would hold the line until its next timer. It keeps a process up one turn more.
      setImmediate(() => {
        this.#pumpScheduled = false;
        this.#pump();
      });
    }
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

  /** Writes what is held until the destination is empty, full or failing; re-entry only queues. */
  #pump(): void {
    if (this.#writing || this.#retry || this.#closed) return;
    this.#writing = true;
    try {
      while (!this.#closed) {
        if (!this.#inFlight) {
          if (this.#queue.length === 0) break;
          this.#inFlight = this.#take();
        }
        if (!this.#nonBlocking) {
          this.#writeAsync(this.#inFlight);
          return; // #writing stays true until the callback
        }
        let n: number;
        try {
          n = writeSync(this.#fd, this.#inFlight);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') this.#wait(PIPE_POLL_MS);
          else this.#fail(err as NodeJS.ErrnoException);
          break;
        }
        if (!this.#advance(n)) {
          this.#wait(PIPE_POLL_MS); // the pipe took part of it: it is full now
          break;
        }
      }
    } finally {
      if (this.#nonBlocking || !this.#inFlight || this.#closed) this.#writing = false;
    }
    if (this.#buffered() === 0) this.#report();
  }

  #writeAsync(chunk: Buffer): void {
    fsWrite(this.#fd, chunk, 0, chunk.length, null, (err, n) => {
      this.#writing = false;
      if (err) return this.#fail(err);
      // A short write (a file filling up): the rest goes next, as bytes (it may end mid-character).
      this.#advance(n);
      this.#pump();
    });
  }

  /** Records n bytes of #inFlight written; true when all of it was. */
  #advance(n: number): boolean {
    const chunk = this.#inFlight;
    if (!chunk) return true;
    this.#failing = false;
    this.#inFlight = n < chunk.length ? chunk.subarray(n) : undefined;
    // Works again: once there is room for new lines, say how many were lost.
    if (this.#buffered() <= this.#max / 2) this.#report();
    return this.#inFlight === undefined;
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
    this.#inFlightLines = count;
    this.#queuedBytes -= bytes;
    return Buffer.from(lines.join(''));
  }

  /** Reports the dropped lines through onRecovered; the warning it logs just queues behind. */
  #report(): void {
    if (this.#unreported === 0 || !this.onRecovered) return;
    const n = this.#unreported;
    this.#unreported = 0;
    this.onRecovered(n);
  }

  #wait(ms: number): void {
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#pump();
    }, ms);
    // A pending retry never keeps a finished process alive.
    this.#retry.unref();
  }

  #fail(err: NodeJS.ErrnoException): void {
    this.#lastError = err.code ?? err.message;
    if (GONE.has(this.#lastError)) {
      // The reader is gone and fd 1 cannot be reopened: count what is held as dropped, keep serving.
      this.#closed = true;
      this.#dropped += this.#queue.length + (this.#inFlight ? this.#inFlightLines : 0);
      this.#droppedBytes += this.#buffered();
      this.#queue = [];
      this.#queuedBytes = 0;
      this.#inFlight = undefined;
      return;
    }
    // ENOSPC, EIO: keep what is held, try again later; new lines queue up to the cap.
    this.#failing = true;
    this.#wait(this.#retryMs);
  }

  /** One non-blocking attempt at what is still held; never retries, never throws. */
  #flushAtExit(): void {
    if (this.#closed || this.#buffered() === 0) return;
    // A file chunk still on the thread pool would interleave with this write.
    if (!this.#nonBlocking && this.#writing) return;
    try {
      const rest = this.#inFlight ? [this.#inFlight, Buffer.from(this.#queue.join(''))] : [Buffer.from(this.#queue.join(''))];
      writeSync(this.#fd, Buffer.concat(rest));
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

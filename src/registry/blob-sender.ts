import { close, open, read } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { BufferPool } from '../lib/buffer-pool.ts';
import { SatelliteError } from '../lib/errors.ts';

/**
 * Streams bytes [start, end] of a file to a response with two pooled buffers: one being read while
 * the other is on its way to the socket. A buffer is reused only after res.write's callback says
 * the socket has taken it, which is also the backpressure. Returns the bytes sent.
 */
export async function sendFileRange(
  path: string,
  start: number,
  end: number,
  res: ServerResponse,
  pool: BufferPool,
  signal: AbortSignal,
  /** Counts bytes as the socket takes them: right even when the client hangs up after the last byte. */
  progress?: { bytes?: number },
): Promise<number> {
  const fd = await new Promise<number>((resolve, reject) => open(path, 'r', (err, fd) => (err ? reject(err) : resolve(fd))));
  const chunk = pool.join();
  const buffers = [pool.acquire(chunk), pool.acquire(chunk)];
  const inFlight: Array<Promise<void> | undefined> = [undefined, undefined];
  const pending = [false, false];
  let sent = 0;
  let failure: unknown;
  try {
    let pos = start;
    let i = 0;
    while (pos <= end) {
      if (inFlight[i]) await inFlight[i];
      if (signal.aborted) throw gone();
      // Streams that started when few were running give back their large buffers as others join.
      const fair = pool.chunkSize();
      if (buffers[i]!.length > fair) {
        pool.release(buffers[i]!);
        buffers[i] = pool.acquire(fair);
      }
      const buf = buffers[i]!;
      const want = Math.min(buf.length, end - pos + 1);
      const bytesRead = await readAt(fd, buf, want, pos);
      if (bytesRead === 0) throw new SatelliteError('BLOB_TRUNCATED', `blob file ${path} ended at ${pos}, expected ${end + 1} bytes`);
      if (signal.aborted) throw gone();
      const k = i;
      pending[k] = true;
      inFlight[k] = new Promise<void>((resolve, reject) => {
        // A listener per write, removed when it completes: racing every chunk against one
        // long-lived promise would pile up reactions on it for the whole stream.
        const onAbort = () => reject(gone());
        signal.addEventListener('abort', onAbort, { once: true });
        res.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead), (err) => {
          pending[k] = false;
          signal.removeEventListener('abort', onAbort);
          if (err) return reject(err);
          if (progress) progress.bytes = (progress.bytes ?? 0) + bytesRead;
          resolve();
        });
      });
      inFlight[i]!.catch(() => undefined);
      pos += bytesRead;
      sent += bytesRead;
      i ^= 1;
    }
    await Promise.all(inFlight);
  } catch (err) {
    failure = err;
  } finally {
    await new Promise<void>((resolve) => close(fd, () => resolve()));
    pool.leave();
    // A buffer the socket has not let go of stays out of the pool (the collector takes it later).
    for (const [k, buf] of buffers.entries()) if (!pending[k]) pool.release(buf);
  }
  if (failure !== undefined) throw failure;
  return sent;
}

// The callback API: lighter per call than FileHandle.read, which matters at thousands of reads/s.
function readAt(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n))));
}

function gone(): SatelliteError {
  return new SatelliteError('CLIENT_GONE', 'client went away');
}

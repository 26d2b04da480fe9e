import { open } from 'node:fs/promises';
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
): Promise<number> {
  const fh = await open(path, 'r');
  const chunk = pool.join();
  const buffers = [pool.acquire(chunk), pool.acquire(chunk)] as const;
  const inFlight: Array<Promise<void> | undefined> = [undefined, undefined];
  const pending = [false, false];
  let sent = 0;
  let failure: unknown;
  const aborted = new Promise<never>((_, reject) => {
    const onAbort = () => reject(new SatelliteError('CLIENT_GONE', 'client went away'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    let pos = start;
    let i = 0;
    while (pos <= end) {
      const buf = buffers[i]!;
      if (inFlight[i]) await Promise.race([inFlight[i], aborted]);
      const want = Math.min(buf.length, end - pos + 1);
      const { bytesRead } = await fh.read(buf, 0, want, pos);
      if (bytesRead === 0) throw new SatelliteError('BLOB_TRUNCATED', `blob file ${path} ended at ${pos}, expected ${end + 1} bytes`);
      if (signal.aborted) break;
      const k = i;
      pending[k] = true;
      inFlight[k] = new Promise<void>((resolve, reject) => {
        res.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead), (err) => {
          pending[k] = false;
          if (err) reject(err);
          else resolve();
        });
      });
      inFlight[i]!.catch(() => undefined);
      pos += bytesRead;
      sent += bytesRead;
      i ^= 1;
    }
    await Promise.race([Promise.all(inFlight), aborted]);
  } catch (err) {
    failure = err;
  } finally {
    await fh.close();
    pool.leave();
    // A buffer the socket has not let go of stays out of the pool (the collector takes it later).
    for (const [k, buf] of buffers.entries()) if (!pending[k]) pool.release(buf);
  }
  if (failure !== undefined) throw failure;
  return sent;
}

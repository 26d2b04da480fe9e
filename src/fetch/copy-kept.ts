import type { Readable } from 'node:stream';
import { takeUnread } from '../lib/unread.ts';

/**
 * Hands every chunk of `body` to `write`, one at a time (the write is the only buffer: no
 * Writable highWaterMark to lose). When the body fails mid-way (a cut link), the bytes that had
 * already arrived but were not yet read are written first, then the body's error is thrown, so
 * the caller's next Range request starts after every byte that crossed the WAN. A failing write
 * stops the copy at once (the body is destroyed) and its error is thrown.
 */
export async function copyKept(body: Readable, write: (chunk: Buffer) => Promise<void>): Promise<void> {
  const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = await it.next();
    } catch (sourceError) {
      for (const chunk of takeUnread(body)) await write(chunk);
      throw sourceError;
    }
    if (next.done) return;
    try {
      await write(next.value);
    } catch (writeError) {
      body.on('error', () => {});
      body.destroy();
      throw writeError;
    }
  }
}

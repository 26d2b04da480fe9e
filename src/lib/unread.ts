import type { Readable } from 'node:stream';

/**
 * Takes the bytes a readable stream still buffers but nobody has read, typically after it was
 * destroyed by a source error (a cut connection). Node keeps the buffer of a destroyed stream
 * (`readableBuffer`, consumed slots are null), it only stops handing it out: those bytes crossed
 * the wire and are worth writing before the error is handled. Returns them in order, without
 * touching the stream: call it once, on a stream that failed and will not be read again.
 */
export function takeUnread(stream: Readable): Buffer[] {
  const want = stream.readableLength;
  const buffer = (stream as unknown as { readableBuffer?: unknown }).readableBuffer;
  if (!want || buffer === null || buffer === undefined || typeof buffer !== 'object' || !(Symbol.iterator in buffer) || stream.readableObjectMode) return [];
  const chunks: Buffer[] = [];
  for (const item of buffer as Iterable<unknown>) {
    if (Buffer.isBuffer(item)) chunks.push(item);
    else if (item instanceof Uint8Array) chunks.push(Buffer.from(item.buffer, item.byteOffset, item.byteLength));
  }
  // readableLength counts exactly the unread bytes: keep the last `want` of what the buffer holds.
  let have = chunks.reduce((n, c) => n + c.length, 0);
  while (have > want && chunks.length > 0) {
    const first = chunks[0]!;
    const drop = have - want;
    if (first.length <= drop) {
      chunks.shift();
      have -= first.length;
    } else {
      chunks[0] = first.subarray(drop);
      have -= drop;
    }
  }
  return chunks;
}

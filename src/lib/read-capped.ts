import type { Readable } from 'node:stream';

/**
 * Reads a small stream whole, never more than `cap` bytes: past the cap the stream is destroyed
 * and `tooLarge()` is thrown (each caller names its own error). For JSON and signature payloads,
 * never blobs.
 */
export async function readCapped(stream: Readable, cap: number, tooLarge: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > cap) {
      stream.destroy();
      throw tooLarge();
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

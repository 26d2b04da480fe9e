import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

/**
 * Re-hashes the bytes a partial file keeps, so the final check covers the whole blob. Returns the
 * hash over [0, offset) and, when the file holds an unverified tail past `durable` (written after
 * the last checkpoint, before a crash), a copy of the hash over [0, durable) to fall back to.
 */
export async function hashKept(path: string, durable: number, offset: number, algorithm: string): Promise<{ hash: Hash; trusted: Hash | undefined }> {
  const hash = createHash(algorithm);
  await feed(hash, path, 0, durable);
  if (offset <= durable) return { hash, trusted: undefined };
  const trusted = hash.copy();
  await feed(hash, path, durable, offset);
  return { hash, trusted };
}

/** Adds bytes [start, end) of the file to `hash`. */
export async function feed(hash: Hash, path: string, start: number, end: number): Promise<void> {
  if (end <= start) return;
  for await (const chunk of createReadStream(path, { start, end: end - 1, highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
}

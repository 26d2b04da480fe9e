import type { IncomingMessage, ServerResponse } from 'node:http';
import { SatelliteError } from '../lib/errors.ts';
import { isRepositoryName, isTag } from '../oci/names.ts';
import { registryError } from './errors.ts';

/** Reads a small body (manifests, never blobs) under a hard cap: 413 as soon as it is exceeded. */
export async function readCappedBody(req: IncomingMessage, cap: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > cap) {
    req.resume();
    throw registryError('MANIFEST_TOO_LARGE', `manifest exceeds ${cap} bytes`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > cap) {
      req.resume();
      throw registryError('MANIFEST_TOO_LARGE', `manifest exceeds ${cap} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string | number> = {}): void {
  res.writeHead(status, { 'Content-Length': 0, ...headers });
  res.end();
}

/**
 * dist-spec pagination parameters: n (page size) and last (exclusive lower bound). `last` must be
 * what the list holds (a tag, or a repository name for the catalog): anything else is 400 before
 * it reaches the index (a 4 KB key once made LMDB throw mid-iteration and leak a read transaction).
 */
export function pageParams(url: URL, last: 'tag' | 'name', maxN = 10000): { n?: number; last?: string } {
  const out: { n?: number; last?: string } = {};
  const n = url.searchParams.get('n');
  if (n !== null) {
    if (!/^\d{1,12}$/.test(n)) throw new SatelliteError('PAGINATION_NUMBER_INVALID', `n must be a non-negative integer, got ${n.slice(0, 20)}`);
    out.n = Math.min(Number(n), maxN);
  }
  const after = url.searchParams.get('last');
  if (after !== null) {
    if (last === 'tag' && !isTag(after)) throw registryError('TAG_INVALID', `last must be a tag, got ${after.slice(0, 130)}`);
    if (last === 'name' && !isRepositoryName(after)) throw registryError('NAME_INVALID', `last must be a repository name, got ${after.slice(0, 260)}`);
    out.last = after;
  }
  return out;
}

/** True when the request says it carries a body (Content-Length > 0 or chunked). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  if (len !== undefined) return Number(len) > 0;
  return req.headers['transfer-encoding'] !== undefined;
}

export function contentLength(req: IncomingMessage): number | undefined {
  const len = req.headers['content-length'];
  if (len === undefined || !/^\d+$/.test(len)) return undefined;
  return Number(len);
}

/** Headers of every blob answer (stored or being fetched): digest, ETag, ranges, caching. */
export function blobHeaders(digest: string) {
  return {
    'Docker-Content-Digest': digest,
    ETag: `"${digest}"`,
    'Accept-Ranges': 'bytes',
    // Content-addressed: the bytes behind this URL never change.
    'Cache-Control': 'max-age=31536000, immutable',
  };
}

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body when small (≤ 1 MiB kept), else empty; see bytes and digest. */
  body: Buffer;
  bytes: number;
  digest: string;
}

const KEEP = 1024 * 1024;

/**
 * One HTTP/1.1 request on a fresh connection. The body streams in (a file never sits in memory);
 * the response is hashed while it streams out, and only its first MiB is kept.
 */
export function httpRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string | number>; body?: Buffer | Readable; timeoutMs?: number } = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const hash = createHash('sha256');
      const kept: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        if (bytes < KEEP) kept.push(chunk);
        bytes += chunk.length;
      });
      res.on('error', reject);
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: bytes <= KEEP ? Buffer.concat(kept) : Buffer.alloc(0),
          bytes,
          digest: `sha256:${hash.digest('hex')}`,
        }),
      );
    });
    req.setTimeout(opts.timeoutMs ?? 120_000, () => req.destroy(new Error(`${opts.method ?? 'GET'} ${url} timed out`)));
    req.on('error', reject);
    const body = opts.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else pipeline(body, req).catch((err: unknown) => req.destroy(err as Error));
  });
}

function expectStatus(what: string, res: HttpResult, status: number): void {
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status}: ${res.body.toString('utf8').slice(0, 500)}`);
  }
}

/**
 * dist-spec monolithic upload in two requests, POST then PUT ?digest= with the whole file as the
 * body: the one form both the satellite and distribution 2.8 accept (2.8 ignores a POST body).
 */
export async function pushBlobFile(baseUrl: string, repo: string, file: string, digest: string, size: number): Promise<void> {
  const start = await httpRequest(`${baseUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { 'Content-Length': 0 } });
  expectStatus(`POST upload to ${baseUrl}`, start, 202);
  const location = start.headers.location;
  if (!location) throw new Error(`POST upload to ${baseUrl}: no Location header`);
  const put = new URL(location, baseUrl);
  put.searchParams.set('digest', digest);
  const res = await httpRequest(put.href, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': size },
    body: createReadStream(file),
    timeoutMs: 300_000,
  });
  expectStatus(`PUT blob ${digest} to ${baseUrl}`, res, 201);
}

/** PUT /v2/<repo>/manifests/<tag>; checks the digest the registry computed. */
export async function pushManifest(baseUrl: string, repo: string, tag: string, manifest: Buffer, mediaType: string): Promise<void> {
  const res = await httpRequest(`${baseUrl}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': mediaType, 'Content-Length': manifest.length },
    body: manifest,
  });
  expectStatus(`PUT manifest ${repo}:${tag} to ${baseUrl}`, res, 201);
  const expected = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
  const got = res.headers['docker-content-digest'];
  if (got !== expected) throw new Error(`PUT manifest to ${baseUrl}: Docker-Content-Digest ${String(got)}, expected ${expected}`);
}

/** GETs a URL and fails unless it answers 200 with exactly these bytes (by digest and size). */
export async function expectContent(url: string, digest: string, size: number, headers?: Record<string, string>): Promise<void> {
  const res = await httpRequest(url, { ...(headers ? { headers } : {}), timeoutMs: 300_000 });
  expectStatus(`GET ${url}`, res, 200);
  if (res.digest !== digest || res.bytes !== size) {
    throw new Error(`GET ${url}: got ${res.bytes} B ${res.digest}, expected ${size} B ${digest}`);
  }
}

import type { ServerResponse } from 'node:http';
import { parseRange } from '../range.ts';
import { blobHeaders } from '../http.ts';
import type { ProxiedBlob, RequestContext } from '../context.ts';

/**
 * Streams a blob while the proxy fetches it. If the fetch fails or the digest does not match, the
 * error reaches the server's catch after the headers went out, which destroys the socket: a
 * client sees a cut response, never a clean end of bad bytes.
 */
export async function sendProxied(ctx: RequestContext, digest: string, blob: ProxiedBlob): Promise<void> {
  const { req, res, signal, stats } = ctx;
  try {
    const size = blob.size;
    const common = blobHeaders(digest);
    const range = size === undefined ? undefined : parseRange(req.headers.range, size);
    if (range === 'unsatisfiable') {
      res.writeHead(416, { ...common, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
      res.end();
      return;
    }
    const length = size === undefined ? undefined : range ? range.end - range.start + 1 : size;
    res.writeHead(range ? 206 : 200, {
      ...common,
      'Content-Type': 'application/octet-stream',
      ...(length !== undefined ? { 'Content-Length': length } : {}),
      ...(range ? { 'Content-Range': `bytes ${range.start}-${range.end}/${size}` } : {}),
    });
    // An empty body too waits for verification (stream() returns only then).
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const start = range?.start ?? 0;
    const end = range ? range.end : undefined;
    stats.bytes = await blob.stream(start, end, (chunk) => write(res, chunk, signal), signal);
    if (!signal.aborted) res.end();
  } finally {
    blob.release();
  }
}

function write(res: ServerResponse, chunk: Buffer, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new Error('client went away'));
    signal.addEventListener('abort', onAbort, { once: true });
    res.write(chunk, (err) => {
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    });
  });
}

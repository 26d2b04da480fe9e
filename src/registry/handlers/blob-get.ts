import { parseDigest } from '../../lib/digest.ts';
import { registryError } from '../errors.ts';
import { parseRange } from '../range.ts';
import { sendFileRange } from '../blob-sender.ts';
import type { Handler, RequestContext } from '../context.ts';
import { sendProxied } from './blob-proxied.ts';
import { blobHeaders } from '../http.ts';

/** dist-spec end-2: GET/HEAD /v2/<name>/blobs/<digest>, with single byte ranges. */
export const getBlob: Handler = async (ctx) => {
  const { store, proxy } = ctx;
  const digest = parseDigest(ctx.ref).digest;
  // containerd names the registry it meant with ?ns=<host> on every mirror request.
  const ns = ctx.url.searchParams.get('ns') ?? undefined;
  const name = proxy ? proxy.storeName(ctx.name, ns) : ctx.name;
  let info = store.statBlob(name, digest);
  if (!info && proxy) {
    const opened = await proxy.openBlob(ctx.name, digest, { ns, signal: ctx.signal, device: ctx.device });
    if (opened !== 'stored') return sendProxied(ctx, digest, opened);
    info = store.statBlob(name, digest);
  }
  if (!info) throw registryError('BLOB_UNKNOWN', `blob ${digest} not found in ${name}`);
  proxy?.noteBlobHit(name, digest);
  await sendBlob(ctx, digest, info.size);
  if (ctx.stats.bytes) proxy?.noteBlobServed(digest, ctx.stats.bytes);
};

/** Writes a stored blob (or the requested range of it); shared with the peer endpoint. */
export async function sendBlob({ req, res, store, signal, pool, stats }: RequestContext, digest: string, size: number): Promise<void> {
  const common = blobHeaders(digest);
  if (req.headers['if-none-match'] === common.ETag) {
    res.writeHead(304, common);
    res.end();
    return;
  }
  const range = parseRange(req.headers.range, size);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { ...common, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
    res.end();
    return;
  }
  const status = range ? 206 : 200;
  const length = range ? range.end - range.start + 1 : size;
  res.writeHead(status, {
    ...common,
    'Content-Type': 'application/octet-stream',
    'Content-Length': length,
    ...(range ? { 'Content-Range': `bytes ${range.start}-${range.end}/${size}` } : {}),
  });
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return;
  }
  // The file may be swept by GC while we stream: an open descriptor keeps its bytes readable.
  const release = store.pin(digest);
  try {
    const start = range?.start ?? 0;
    stats.bytes = await sendFileRange(store.blobPath(digest), start, start + length - 1, res, pool, signal, stats);
  } finally {
    release();
  }
  if (!signal.aborted) res.end();
}

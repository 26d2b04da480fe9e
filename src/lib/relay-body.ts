import { Readable } from 'node:stream';
import { takeUnread } from './unread.ts';

/**
 * Passes a response body on through a Readable of its own, with backpressure, calling onChunk for
 * each chunk (counting, limits: an Error it returns fails the body). When the body fails (a cut
 * link), what it still buffered is passed on first, then the error from onError: the reader
 * takes those bytes with takeUnread, so nothing that crossed the wire is lost. Destroying the
 * result destroys the body (aborting its request).
 */
export function relayBody(
  body: Readable,
  opts: { onChunk: (chunk: Buffer) => Error | undefined; onEnd?: () => void; onError: (err: unknown) => Error },
): Readable {
  const out = new Readable({
    highWaterMark: 64 * 1024,
    read() {
      body.resume();
    },
    destroy(err, cb) {
      body.off('data', onData);
      if (!body.destroyed) body.destroy();
      cb(err);
    },
  });
  let failed = false;
  const onData = (chunk: Buffer) => {
    if (failed) return;
    const refused = opts.onChunk(chunk);
    if (refused) {
      failed = true;
      body.off('data', onData);
      out.destroy(opts.onError(refused));
      return;
    }
    if (!out.push(chunk)) body.pause();
  };
  body.on('data', onData);
  body.once('end', () => {
    if (failed) return;
    out.push(null);
    opts.onEnd?.();
  });
  body.once('error', (err) => {
    if (failed) return;
    for (const chunk of takeUnread(body)) onData(chunk);
    if (failed) return;
    failed = true;
    out.destroy(opts.onError(err));
  });
  return out;
}

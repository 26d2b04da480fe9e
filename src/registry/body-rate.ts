import type { IncomingMessage } from 'node:http';

export interface BodyRateLimits {
  /** Average bytes per second a body must bring over each window; 0 = no check. */
  minBytesPerSecond: number;
  windowSeconds: number;
}

/**
 * Cuts a request whose body trickles in (slowloris on uploads: 1 byte every 10 s keeps the idle
 * timeout happy and holds a request slot for hours). Every window, the socket must have read at
 * least minBytesPerSecond × windowSeconds bytes, unless bytes are waiting in the request's own
 * buffer (then we, not the client, are the slow side: disk, LMDB, a queue). Returns a stop function.
 */
export function watchBodyRate(req: IncomingMessage, limits: BodyRateLimits, onSlow: (received: number) => void): () => void {
  if (limits.minBytesPerSecond <= 0 || req.complete) return () => undefined;
  const socket = req.socket;
  const need = limits.minBytesPerSecond * limits.windowSeconds;
  let mark = socket.bytesRead;
  const timer = setInterval(() => {
    if (req.complete || socket.destroyed) return stop();
    const got = socket.bytesRead - mark;
    mark = socket.bytesRead;
    if (got >= need || req.readableLength > 0) return;
    stop();
    onSlow(got);
  }, limits.windowSeconds * 1000);
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    req.off('end', stop);
    req.off('close', stop);
  };
  req.once('end', stop);
  req.once('close', stop);
  return stop;
}

import { Transform } from 'node:stream';

/**
 * Counts a peer's body bytes as they pass and refuses more than the blob has; on an error the
 * peer is marked failed so the next attempt (resuming from the bytes written) goes elsewhere.
 */
export function countingBody(limit: number, onBytes: (n: number) => void): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > limit) {
        cb(new Error(`peer sent more than the ${limit} bytes asked for`));
        return;
      }
      onBytes(chunk.length);
      cb(null, chunk);
    },
  });
}

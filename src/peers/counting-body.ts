import type { Readable } from 'node:stream';
import { relayBody } from '../lib/relay-body.ts';

/**
 * A peer's body, counted as it passes and refused past the bytes asked for. When the peer is cut
 * mid-body, the bytes it already sent are still handed on (the fill writes them before resuming
 * elsewhere), then onFail marks the peer failed so the next attempt goes elsewhere.
 */
export function countingBody(body: Readable, limit: number, on: { bytes: (n: number) => void; done: () => void; fail: (err: Error) => void }): Readable {
  let seen = 0;
  return relayBody(body, {
    onChunk: (chunk) => {
      seen += chunk.length;
      if (seen > limit) return new Error(`peer sent more than the ${limit} bytes asked for`);
      on.bytes(chunk.length);
      return undefined;
    },
    onEnd: on.done,
    onError: (err) => {
      const e = err instanceof Error ? err : new Error(String(err));
      on.fail(e);
      return e;
    },
  });
}

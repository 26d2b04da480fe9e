import type { FinishedRequest } from '../registry/index.ts';

/**
 * Body bytes the registry sent to devices since start (blobs, manifests, tag lists): every finished
 * response except the peer endpoint (peers count their own, src/peers), the status JSON and health
 * probes. The state report's traffic.bytesServed.
 */
export class ServedBytes {
  #total = 0;

  observe = (r: FinishedRequest): void => {
    if (r.bytes <= 0 || r.url.startsWith('/_satellite/') || r.url === '/healthz' || r.url === '/readyz') return;
    this.#total += r.bytes;
  };

  get total(): number {
    return this.#total;
  }
}

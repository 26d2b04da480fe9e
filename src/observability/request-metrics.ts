import { Counter, Histogram, type Registry } from 'prom-client';
import { operationOf, type FinishedRequest } from '../registry/index.ts';

/** Upper bounds in seconds: manifest answers in ms, large blob pulls in minutes. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** Registry requests counted as they finish (the registry calls `observe` once per response). */
export class RequestMetrics {
  readonly #requests: Counter<'operation' | 'status_class'>;
  readonly #duration: Histogram<'operation'>;
  readonly #bytes: Counter<'operation'>;

  constructor(registry: Registry, prefix: string) {
    this.#requests = new Counter({
      name: `${prefix}registry_requests_total`,
      help: 'Registry requests answered, by operation (e.g. manifest_get, blob_get, upload_patch) and status class (2xx..5xx).',
      labelNames: ['operation', 'status_class'],
      registers: [registry],
    });
    this.#duration = new Histogram({
      name: `${prefix}registry_request_duration_seconds`,
      help: 'Time from request to the end of the response, by operation.',
      labelNames: ['operation'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.#bytes = new Counter({
      name: `${prefix}registry_sent_bytes_total`,
      help: 'Response body bytes the registry sent (blobs, manifests, JSON), by operation.',
      labelNames: ['operation'],
      registers: [registry],
    });
  }

  /** One finished response. */
  observe = (r: FinishedRequest): void => {
    const operation = operationOf(r.method, r.url);
    const status_class = `${Math.floor(r.status / 100)}xx`;
    this.#requests.inc({ operation, status_class });
    this.#duration.observe({ operation }, r.seconds);
    if (r.bytes > 0) this.#bytes.inc({ operation }, r.bytes);
  };
}

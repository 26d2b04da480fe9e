import { upstreamTargetSchema } from '../protocol/desired-state.ts';

/** Pull-through cache settings; connection settings (TLS, retries...) come from the top-level `upstream`. */
export interface ProxyConfig {
  enabled: boolean;
  /** The registry misses are fetched from. */
  upstream?: { url: string; username?: string; password?: string };
  /**
   * The registry host containerd names with `?ns=` for this upstream (e.g. "registry.example.com").
   * When set, a request naming another host is not proxied; requests without ?ns= always are.
   */
  namespace?: string;
  /** A cached tag is served without asking the upstream for this long, then revalidated. */
  tagTtlSeconds: number;
  /** Disk for proxy-cached blobs; past it, least recently used cached images are evicted. Absent: unlimited. */
  cacheQuotaBytes?: number;
  /** Distinct upstream fetches (blobs and manifests) at once; more get 429 with Retry-After. */
  maxConcurrentFetches: number;
  /** Upstream response headers must arrive within this (containerd never fails over from a hanging mirror). */
  firstByteTimeoutMs: number;
  /** Longest silence inside an upstream body before the fetch is abandoned. */
  idleTimeoutMs: number;
  /** How often batched access times are written (they order LRU eviction). */
  accessFlushSeconds: number;
}

export const proxyConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: false },
    upstream: upstreamTargetSchema,
    namespace: { type: 'string', pattern: '^[A-Za-z0-9.-]+(:[0-9]{1,5})?$' },
    tagTtlSeconds: { type: 'integer', minimum: 0, maximum: 31536000, default: 300 },
    cacheQuotaBytes: { type: 'integer', minimum: 1048576 },
    maxConcurrentFetches: { type: 'integer', minimum: 1, maximum: 1024, default: 32 },
    firstByteTimeoutMs: { type: 'integer', minimum: 100, maximum: 600000, default: 10000 },
    idleTimeoutMs: { type: 'integer', minimum: 100, maximum: 600000, default: 15000 },
    accessFlushSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 10 },
  },
  // Turning it on without saying where from is a configuration error, named at start.
  if: { properties: { enabled: { const: true } }, required: ['enabled'] },
  then: { properties: { upstream: true }, required: ['upstream'] },
} as const;

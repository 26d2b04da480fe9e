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
  /**
   * More upstreams, chosen by containerd's `?ns=<host>`. Their content is stored under
   * `<repositoryPrefix>/<repository>` so equal names from different registries never mix; a
   * request without ?ns= reaches them by that prefixed name.
   */
  mirrors: Array<{ namespace: string; upstream: { url: string; username?: string; password?: string }; repositoryPrefix?: string }>;
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
  /**
   * An upstream blob body cut mid-way is re-requested from the bytes written (Range); the fill
   * fails after this many requests in a row without a new byte (0: never resume).
   */
  resumeAttempts: number;
  /** How often batched access times are written (they order LRU eviction). */
  accessFlushSeconds: number;
  /** With a `peers` section: a blob miss asks the site's peers before the upstream. */
  askPeers: boolean;
  /** How long a miss waits for a peer that is itself fetching the blob (a device is waiting). */
  peerWaitMs: number;
  /** Signatures checked before a manifest fetched from the upstream is served or cached (docs/trust.md). */
  signaturePolicy: ProxySignaturePolicy;
  /** Devices' own upstream credentials, for repositories the satellite's cannot read (docs/proxy.md). */
  deviceCredentials: {
    /**
     * Which requests' Authorization is forwarded: those that came through the HTTPS proxy (the
     * device addressed them to the registry host), also those on the registry port when it has no
     * registry.auth ('all'), or none ('never').
     */
    forward: 'https-proxy' | 'all' | 'never';
    /** A confirmation by the upstream covers the device's requests in that repository for this long. */
    confirmSeconds: number;
    /** With the upstream unreachable, a confirmation this recent still admits the device. */
    offlineGraceSeconds: number;
  };
}

export interface ProxySignaturePolicy {
  /**
   * off: nothing is checked (the desired state's policies too); warn: served, logged, counted and
   * flagged; enforce: an image without a valid signature is answered 403 DENIED and not cached.
   */
  mode: 'off' | 'warn' | 'enforce';
  /** Files of PEM public keys (cosign.pub), read at start; a file without a key is a config error. */
  keyFiles: string[];
  /** Repositories (store names, `*` any characters) this policy covers; absent: every repository. */
  repositories?: string[];
  /**
   * Also apply the desired state's trust policies (their repositories and modes: the stricter mode
   * wins) and trust their keys for `repositories`.
   */
  desiredState: boolean;
  /** A verdict other than verified is checked again after this long (a signature pushed later). */
  recheckSeconds: number;
  /** Verdicts kept in memory, per repository and digest (least recently used dropped). */
  verdictCacheEntries: number;
}

const NAMESPACE = { type: 'string', pattern: '^[A-Za-z0-9.-]+(:[0-9]{1,5})?$' } as const;

/** The store prefix of a mirror: as configured, else its namespace lowercased with ':' as '-'. */
export function mirrorPrefix(m: { namespace: string; repositoryPrefix?: string }): string {
  return m.repositoryPrefix ?? m.namespace.toLowerCase().replace(':', '-');
}

export const proxyConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: false },
    upstream: upstreamTargetSchema,
    namespace: NAMESPACE,
    mirrors: {
      type: 'array',
      maxItems: 32,
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['namespace', 'upstream'],
        properties: {
          namespace: NAMESPACE,
          upstream: upstreamTargetSchema,
          // Repository path components (dist-spec name grammar); default: the namespace with ':' as '-'.
          repositoryPrefix: { type: 'string', maxLength: 128, pattern: '^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*$' },
        },
      },
    },
    tagTtlSeconds: { type: 'integer', minimum: 0, maximum: 31536000, default: 300 },
    cacheQuotaBytes: { type: 'integer', minimum: 1048576 },
    maxConcurrentFetches: { type: 'integer', minimum: 1, maximum: 1024, default: 32 },
    firstByteTimeoutMs: { type: 'integer', minimum: 100, maximum: 600000, default: 10000 },
    idleTimeoutMs: { type: 'integer', minimum: 100, maximum: 600000, default: 15000 },
    resumeAttempts: { type: 'integer', minimum: 0, maximum: 100, default: 5 },
    accessFlushSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 10 },
    askPeers: { type: 'boolean', default: true },
    peerWaitMs: { type: 'integer', minimum: 0, maximum: 30000, default: 2000 },
    signaturePolicy: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        mode: { enum: ['off', 'warn', 'enforce'], default: 'off' },
        keyFiles: { type: 'array', maxItems: 32, default: [], items: { type: 'string', minLength: 1 } },
        repositories: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[a-z0-9._/*-]+$' } },
        desiredState: { type: 'boolean', default: true },
        recheckSeconds: { type: 'integer', minimum: 0, maximum: 86400, default: 300 },
        verdictCacheEntries: { type: 'integer', minimum: 16, maximum: 1000000, default: 4096 },
      },
    },
    deviceCredentials: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        forward: { enum: ['https-proxy', 'all', 'never'], default: 'https-proxy' },
        confirmSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 60 },
        offlineGraceSeconds: { type: 'integer', minimum: 0, maximum: 604800, default: 3600 },
      },
    },
  },
  // Turning it on without saying where from is a configuration error, named at start.
  if: { properties: { enabled: { const: true } }, required: ['enabled'] },
  then: {
    properties: { upstream: true, mirrors: true },
    anyOf: [
      { properties: { upstream: true }, required: ['upstream'] },
      { properties: { mirrors: { type: 'array', minItems: 1 } }, required: ['mirrors'] },
    ],
  },
} as const;

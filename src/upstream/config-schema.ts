/** Connection settings for one upstream registry (Harbor or any OCI registry). */
export interface UpstreamConfig {
  /** Base URL, e.g. http://127.0.0.1:5000 or https://harbor.example.com (a path prefix is kept). */
  url: string;
  /** Basic credentials; also sent to the token realm (Harbor robot accounts work as basic creds). */
  username?: string;
  password?: string;
  insecureSkipVerify?: boolean;
  /** Extra CA (PEM file) trusted for TLS upstreams, on top of the system roots. */
  caFile?: string;
  /**
   * Trust the operating system's CA bundle (what update-ca-certificates maintains) rather than
   * Node's bundled roots. Default true; when the bundle cannot be read, Node's roots are used.
   */
  systemTrust?: boolean;
  /** The system bundle; default $SSL_CERT_FILE, else /etc/ssl/certs/ca-certificates.crt (config/ resolves it). */
  systemCaFile?: string;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  /** Longest silence between two body chunks (undici bodyTimeout). */
  bodyIdleTimeoutMs: number;
  /** Connections per origin (HTTP/1.1; an HTTP/2 upstream multiplexes on fewer). */
  maxConnections: number;
  /** How long an idle connection is kept for the next request (the server's Keep-Alive hint may shorten it). */
  keepAliveMs: number;
  /** Offer HTTP/2 (ALPN, TLS upstreams only); plain-HTTP upstreams always speak HTTP/1.1. */
  http2: boolean;
  /** A Retry-After longer than this is not waited for: the request fails with retryAfterMs instead. */
  maxRetryAfterMs: number;
  /** Retries of small requests (manifests, /v2/, tokens) on 429/5xx and connection resets. */
  retries: number;
  userAgent?: string;
}

/** ajv schema (useDefaults) for UpstreamConfig; defaults suit a 1 GB board on a slow WAN. */
export const upstreamConfigSchema = {
  $id: 'upstream-config',
  type: 'object',
  additionalProperties: false,
  required: ['url'],
  properties: {
    url: { type: 'string', pattern: '^https?://[^\\s/?#]+(/[^\\s?#]*)?$' },
    username: { type: 'string', minLength: 1 },
    password: { type: 'string' },
    insecureSkipVerify: { type: 'boolean', default: false },
    caFile: { type: 'string', minLength: 1 },
    systemTrust: { type: 'boolean', default: true },
    systemCaFile: { type: 'string', minLength: 1 },
    connectTimeoutMs: { type: 'integer', minimum: 100, maximum: 300000, default: 10000 },
    headersTimeoutMs: { type: 'integer', minimum: 100, maximum: 600000, default: 30000 },
    bodyIdleTimeoutMs: { type: 'integer', minimum: 100, maximum: 600000, default: 30000 },
    maxConnections: { type: 'integer', minimum: 1, maximum: 256, default: 32 },
    keepAliveMs: { type: 'integer', minimum: 1000, maximum: 3600000, default: 120000 },
    http2: { type: 'boolean', default: true },
    maxRetryAfterMs: { type: 'integer', minimum: 0, maximum: 3600000, default: 60000 },
    retries: { type: 'integer', minimum: 0, maximum: 20, default: 3 },
    userAgent: { type: 'string', minLength: 1, maxLength: 256 },
  },
  // Credentials come as a pair: a username alone would send an empty password upstream.
  dependencies: { password: ['username'] },
} as const;

/** The schema's defaults, for code that builds a config by hand (tests, CLI one-offs). */
export const UPSTREAM_DEFAULTS = {
  systemTrust: true,
  connectTimeoutMs: 10000,
  headersTimeoutMs: 30000,
  bodyIdleTimeoutMs: 30000,
  maxConnections: 32,
  keepAliveMs: 120000,
  http2: true,
  maxRetryAfterMs: 60000,
  retries: 3,
} as const satisfies Partial<UpstreamConfig>;

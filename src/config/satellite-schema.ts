import { syncConfigSchema, type SyncConfig } from '../sync/config-schema.ts';
import { upstreamConfigSchema, type UpstreamConfig } from '../upstream/config-schema.ts';
import { controlConfigSchema, type ControlConfig } from '../control/config-schema.ts';
import { peersConfigSchema, type PeersConfig } from '../peers/config-schema.ts';
import { proxyConfigSchema, type ProxyConfig } from '../proxy/config-schema.ts';
import { runtimesConfigSchema, type RuntimesConfig } from '../runtimes/config-schema.ts';
import type { HtpasswdAuthOptions } from '../registry/auth.ts';
import { adminConfigSchema, type AdminConfig } from '../admin/config-schema.ts';
import { restartBackoffConfigSchema, type RestartBackoffConfig } from '../lib/restart-backoff.ts';
import { metricsConfigSchema, type MetricsConfig } from '../observability/config-schema.ts';
import { logConfigSchema, type LogConfig } from '../lib/log-config.ts';
import { httpsProxyConfigSchema, type HttpsProxyConfig } from '../https-proxy/config-schema.ts';
import { webhookConfigSchema, type WebhookConfig } from '../webhook/config-schema.ts';
import { memoryConfigSchema, type MemoryConfig } from '../daemon/memory/config-schema.ts';

// Connection settings for upstreams; the URL itself comes from the desired state.
const { url: _url, ...upstreamProperties } = upstreamConfigSchema.properties;

/** JSON Schema of the satellite's config file. Defaults suit a 1 GB board. */
export const satelliteConfigSchema = {
  $id: 'satellite-config',
  type: 'object',
  additionalProperties: false,
  properties: {
    /** Board profile under this file: a name (board/<name>.json of the install) or a path. */
    board: { type: 'string', minLength: 1 },
    dataDir: { type: 'string', minLength: 1, default: './data' },
    /** Under systemd: wait longer before each start that follows a quick failure (docs/operations.md). */
    restartBackoff: restartBackoffConfigSchema,
    /** Level and the bounded stdout buffer (docs/operations.md, "Logs"). */
    log: logConfigSchema,
    registry: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        listen: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            host: { type: 'string', minLength: 1, default: '0.0.0.0' },
            port: { type: 'integer', minimum: 0, maximum: 65535, default: 8585 },
          },
        },
        tls: {
          type: 'object',
          additionalProperties: false,
          required: ['cert', 'key'],
          properties: {
            cert: { type: 'string', minLength: 1 },
            key: { type: 'string', minLength: 1 },
          },
        },
        auth: {
          type: 'object',
          additionalProperties: false,
          required: ['htpasswd'],
          properties: {
            htpasswd: { type: 'string', minLength: 1 },
            realm: { type: 'string', minLength: 1, default: 'harbor-satellite' },
            /** bcrypt checks run on this many worker threads, never on the event loop. */
            verifyThreads: { type: 'integer', minimum: 1, maximum: 64, default: 2 },
            /** Checks waiting for a thread; beyond, 429 at once. */
            maxPendingVerifications: { type: 'integer', minimum: 1, maximum: 100000, default: 64 },
            /** A verified user:password is remembered this long (an HMAC of it, in memory), up to cacheEntries. */
            cacheSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 60 },
            cacheEntries: { type: 'integer', minimum: 1, maximum: 1000000, default: 1000 },
            /** Failed password checks allowed per remote address per minute; beyond, 429 with Retry-After. */
            failuresPerMinute: { type: 'integer', minimum: 1, maximum: 100000, default: 10 },
          },
        },
        /**
         * Without registry.auth, pushes and deletes are refused (403 DENIED) unless this is true:
         * devices only pull, and anyone on the LAN can reach the port.
         */
        anonymousPush: { type: 'boolean', default: false },
        maxConcurrentRequests: { type: 'integer', minimum: 1, maximum: 100000, default: 256 },
        /** Requests in flight from one remote address: one host cannot take every slot. */
        maxConcurrentRequestsPerClient: { type: 'integer', minimum: 1, maximum: 100000, default: 64 },
        /**
         * A request body (upload, manifest) must bring at least bodyMinBytesPerSecond on average over
         * every bodyRateWindowSeconds, else the connection is cut (slow-body attacks hold slots).
         */
        bodyMinBytesPerSecond: { type: 'integer', minimum: 0, maximum: 1073741824, default: 1024 },
        bodyRateWindowSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 30 },
        /** Open upload sessions, in total and per remote address: 429 beyond. */
        maxUploadSessions: { type: 'integer', minimum: 1, maximum: 1000000, default: 512 },
        maxUploadSessionsPerClient: { type: 'integer', minimum: 1, maximum: 1000000, default: 64 },
        maxManifestBytes: { type: 'integer', minimum: 1024, maximum: 67108864, default: 4194304 },
        /** Requests idle (no bytes either way) longer than this are dropped. */
        idleTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
        headersTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 600, default: 20 },
        /** Memory for all blob downloads together; chunks shrink as concurrent streams grow. */
        sendBufferBudgetBytes: { type: 'integer', minimum: 262144, maximum: 1073741824, default: 8388608 },
        sendChunkMaxBytes: { type: 'integer', minimum: 65536, maximum: 16777216, default: 4194304 },
      },
    },
    sync: syncConfigSchema,
    /** The control plane (Ground Control over MQTT); absent = desired state from sync.desiredStateFile. */
    control: controlConfigSchema,
    /** Blob sharing with the other satellites of the site; absent = none. */
    peers: peersConfigSchema,
    /** Pull-through cache: misses are fetched from proxy.upstream (see docs/proxy.md). */
    proxy: proxyConfigSchema,
    /** CONNECT proxy for HTTPS_PROXY runtimes (docker): listed registries answered here (docs/runtimes.md). */
    httpsProxy: httpsProxyConfigSchema,
    /** Kubernetes mutating admission webhook pointing pods' images at the satellite (docs/runtimes.md). */
    webhook: webhookConfigSchema,
    upstream: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: upstreamProperties,
      dependencies: upstreamConfigSchema.dependencies,
    },
    /** Local admin socket for the `satellite` CLI; see docs/operations.md. */
    admin: adminConfigSchema,
    /** Container runtime mirror configuration (`satellite runtime apply`); see docs/runtimes.md. */
    runtimes: runtimesConfigSchema,
    /** Prometheus metrics on their own listener (docs/operations.md, "Metrics"). */
    metrics: metricsConfigSchema,
    /** The memory watchdog: above the soft limit, 429 to new blob downloads and sync paused (docs/operations.md, "Memory"). */
    memory: memoryConfigSchema,
    store: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        gcGraceSeconds: { type: 'integer', minimum: 0, default: 3600 },
        /** Upload sessions idle longer than this are dropped (at start-up and by the periodic sweep). */
        uploadTtlSeconds: { type: 'integer', minimum: 1, default: 3600 },
        uploadSweepIntervalSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 300 },
        readChunkBytes: { type: 'integer', minimum: 4096, maximum: 16777216, default: 262144 },
        indexMapSizeBytes: { type: 'integer', minimum: 1048576 },
        /** Free space kept on the data directory's filesystem; downloads and pushes that would eat into it wait or get 507. */
        minFreeBytes: { type: 'integer', minimum: 0, default: 67108864 },
        /** Under disk pressure: GC grace (shorter than gcGraceSeconds) and the idle time after which an upload session counts as abandoned. */
        pressureGcGraceSeconds: { type: 'integer', minimum: 0, default: 300 },
        pressureUploadIdleSeconds: { type: 'integer', minimum: 0, default: 600 },
      },
    },
  },
} as const;

export interface SatelliteConfig {
  /** The board profile applied (its file, absolute), if any. */
  board?: string;
  dataDir: string;
  restartBackoff: RestartBackoffConfig;
  log: LogConfig;
  registry: {
    listen: { host: string; port: number };
    tls?: { cert: string; key: string };
    auth?: { htpasswd: string } & HtpasswdAuthOptions;
    anonymousPush: boolean;
    maxConcurrentRequests: number;
    maxConcurrentRequestsPerClient: number;
    bodyMinBytesPerSecond: number;
    bodyRateWindowSeconds: number;
    maxUploadSessions: number;
    maxUploadSessionsPerClient: number;
    maxManifestBytes: number;
    idleTimeoutSeconds: number;
    headersTimeoutSeconds: number;
    sendBufferBudgetBytes: number;
    sendChunkMaxBytes: number;
  };
  sync: SyncConfig;
  control?: ControlConfig;
  peers?: PeersConfig;
  proxy: ProxyConfig;
  httpsProxy: HttpsProxyConfig;
  webhook: WebhookConfig;
  /** Defaults for every upstream client: timeouts, TLS, and credentials when the desired state has none. */
  upstream: Omit<UpstreamConfig, 'url'>;
  runtimes: RuntimesConfig;
  metrics: MetricsConfig;
  memory: MemoryConfig;
  admin: AdminConfig;
  store: {
    gcGraceSeconds: number;
    uploadTtlSeconds: number;
    uploadSweepIntervalSeconds: number;
    readChunkBytes: number;
    indexMapSizeBytes?: number;
    minFreeBytes: number;
    pressureGcGraceSeconds: number;
    pressureUploadIdleSeconds: number;
  };
}

import { syncConfigSchema, type SyncConfig } from '../sync/config-schema.ts';
import { upstreamConfigSchema, type UpstreamConfig } from '../upstream/config-schema.ts';
import { controlConfigSchema, type ControlConfig } from '../control/config-schema.ts';
import { peersConfigSchema, type PeersConfig } from '../peers/config-schema.ts';
import { proxyConfigSchema, type ProxyConfig } from '../proxy/config-schema.ts';
import { runtimesConfigSchema, type RuntimesConfig } from '../runtimes/config-schema.ts';
import { restartBackoffConfigSchema, type RestartBackoffConfig } from '../lib/restart-backoff.ts';

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
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
      },
    },
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
          },
        },
        maxConcurrentRequests: { type: 'integer', minimum: 1, maximum: 100000, default: 256 },
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
    upstream: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: upstreamProperties,
      dependencies: upstreamConfigSchema.dependencies,
    },
    /** Container runtime mirror configuration (`satellite runtime apply`); see docs/runtimes.md. */
    runtimes: runtimesConfigSchema,
    store: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        gcGraceSeconds: { type: 'integer', minimum: 0, default: 3600 },
        uploadTtlSeconds: { type: 'integer', minimum: 60, default: 86400 },
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
  log: { level: string };
  registry: {
    listen: { host: string; port: number };
    tls?: { cert: string; key: string };
    auth?: { htpasswd: string; realm: string };
    maxConcurrentRequests: number;
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
  /** Defaults for every upstream client: timeouts, TLS, and credentials when the desired state has none. */
  upstream: Omit<UpstreamConfig, 'url'>;
  runtimes: RuntimesConfig;
  store: {
    gcGraceSeconds: number;
    uploadTtlSeconds: number;
    readChunkBytes: number;
    indexMapSizeBytes?: number;
    minFreeBytes: number;
    pressureGcGraceSeconds: number;
    pressureUploadIdleSeconds: number;
  };
}

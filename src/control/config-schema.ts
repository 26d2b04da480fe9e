/**
 * The `control` section of the satellite config: how the satellite finds Ground Control and its
 * broker. Absent section = no control plane. Either explicit broker credentials (`mqtt` +
 * `satelliteId`) or zero-touch registration (`groundControlUrl` + a token, inline or in a file).
 */
export const controlConfigSchema = {
  type: 'object',
  additionalProperties: false,
  dependencies: {
    mqtt: ['satelliteId'],
    registrationToken: ['groundControlUrl'],
    registrationTokenFile: ['groundControlUrl'],
  },
  properties: {
    /** Base URL of Ground Control, e.g. https://gc.example.com; registration POSTs to <url>/api/v1/register. */
    groundControlUrl: { type: 'string', pattern: '^https?://[^\\s/]+(/[^\\s]*)?$' },
    /** One-time registration token (used on first boot only). */
    registrationToken: { type: 'string', minLength: 16, maxLength: 200 },
    /** File holding the token, e.g. on a Pi's boot partition; ignored once registered. */
    registrationTokenFile: { type: 'string', minLength: 1 },
    /** With `mqtt`: this satellite's id (topics are per id). */
    satelliteId: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
    /** Explicit broker credentials: skips registration. */
    mqtt: {
      type: 'object',
      additionalProperties: false,
      required: ['url'],
      properties: {
        url: { type: 'string', pattern: '^(mqtts?|wss?)://[^\\s]+$' },
        username: { type: 'string', minLength: 1 },
        password: { type: 'string' },
        /** Default `satellite-<satelliteId>`; must be stable, the broker keeps the session under it. */
        clientId: { type: 'string', minLength: 1, maxLength: 128 },
        /** PEM CA bundle for an mqtts:// broker with a private CA. */
        caFile: { type: 'string', minLength: 1 },
      },
    },
    /** PEM CA bundle trusted for Ground Control (HTTPS) and, unless mqtt.caFile is set, the broker. */
    caFile: { type: 'string', minLength: 1 },
    /** Where the registered identity is kept; default <dataDir>/identity.json. */
    identityFile: { type: 'string', minLength: 1 },
    /** A state report at least this often (also after every sync run and on connect). */
    reportIntervalSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
    /**
     * Between the periodic reports, one when a download advanced by this share of its size (or by
     * reportProgressStepBytes, whichever comes first); 0 = no progress reports in between.
     */
    reportProgressStepPercent: { type: 'integer', minimum: 0, maximum: 100, default: 10 },
    /** A progress report at least every this many downloaded bytes of an image (default 100 MiB); 0 = by percent only. */
    reportProgressStepBytes: { type: 'integer', minimum: 0, maximum: 1099511627776, default: 104857600 },
    keepaliveSeconds: { type: 'integer', minimum: 5, maximum: 3600, default: 30 },
    /** Time allowed for the TCP/TLS connect and CONNACK. */
    connectTimeoutMs: { type: 'integer', minimum: 500, maximum: 300000, default: 10000 },
    /** Reconnect (and registration retry) backoff: doubles from min to max, with jitter. */
    reconnectMinMs: { type: 'integer', minimum: 50, maximum: 600000, default: 1000 },
    reconnectMaxMs: { type: 'integer', minimum: 50, maximum: 3600000, default: 60000 },
    registrationTimeoutMs: { type: 'integer', minimum: 500, maximum: 300000, default: 15000 },
    /** Messages kept while offline; past it the oldest are dropped, counted and reported. */
    maxOutbox: { type: 'integer', minimum: 10, maximum: 1000000, default: 10000 },
    /** Unsent state reports kept; older ones are superseded by newer (only the newest matters). */
    maxQueuedReports: { type: 'integer', minimum: 1, maximum: 100000, default: 50 },
    /** Command ids remembered (so a redelivery is not run twice): this many, this long. */
    commandIdsMax: { type: 'integer', minimum: 10, maximum: 1000000, default: 10000 },
    commandIdsMaxAgeDays: { type: 'integer', minimum: 1, maximum: 3650, default: 30 },
    /** Deadline for flushing the outbox and publishing offline on shutdown. */
    closeTimeoutMs: { type: 'integer', minimum: 100, maximum: 120000, default: 5000 },
  },
} as const;

export interface ControlConfig {
  groundControlUrl?: string;
  registrationToken?: string;
  registrationTokenFile?: string;
  satelliteId?: string;
  mqtt?: { url: string; username?: string; password?: string; clientId?: string; caFile?: string };
  caFile?: string;
  identityFile?: string;
  reportIntervalSeconds: number;
  reportProgressStepPercent: number;
  reportProgressStepBytes: number;
  keepaliveSeconds: number;
  connectTimeoutMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  registrationTimeoutMs: number;
  maxOutbox: number;
  maxQueuedReports: number;
  commandIdsMax: number;
  commandIdsMaxAgeDays: number;
  closeTimeoutMs: number;
}

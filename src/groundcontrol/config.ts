import { restartBackoffConfigSchema, type RestartBackoffConfig } from '../lib/restart-backoff.ts';
import { dirname, isAbsolute, resolve } from 'node:path';
import { SatelliteError } from '../lib/errors.ts';
import { deepFreeze, validate } from '../lib/validate.ts';
import { readJsonObjectFile } from '../lib/json-file.ts';
import { upstreamTargetSchema } from '../protocol/desired-state.ts';
import { logConfigSchema, type LogConfig } from '../lib/log-config.ts';
import { listenSchema } from '../lib/listen-schema.ts';

/** Exit status for bad configuration (EX_CONFIG). */
export const EXIT_CONFIG = 78;

const listen = listenSchema;

const MQTT_URL = { type: 'string', pattern: '^(mqtts?|tcp|ssl|wss?)://[^/\\s]+/?$' } as const;

/** JSON Schema of Ground Control's config file. */
export const groundControlConfigSchema = {
  $id: 'groundcontrol-config',
  type: 'object',
  additionalProperties: false,
  properties: {
    dataDir: { type: 'string', minLength: 1, default: './groundcontrol-data' },
    /** Under systemd: wait longer before each start that follows a quick failure (docs/operations.md). */
    restartBackoff: restartBackoffConfigSchema,
    /** File holding an admin token (first line) to accept, e.g. from a secret store. */
    adminTokenFile: { type: 'string', minLength: 1 },
    api: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        listen: listen('0.0.0.0', 8480),
        maxBodyBytes: { type: 'integer', minimum: 1024, maximum: 16777216, default: 1048576 },
        /** Request bodies nested deeper are refused with 400 (no API body needs more than a few levels). */
        maxJsonDepth: { type: 'integer', minimum: 4, maximum: 1000, default: 32 },
        /** POST /register needs no admin token: refusals per client address are limited and logged in summary. */
        register: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            maxFailuresPerAddress: { type: 'integer', minimum: 1, maximum: 1000000, default: 10 },
            failureWindowSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
            logIntervalSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 10 },
            maxTrackedAddresses: { type: 'integer', minimum: 1, maximum: 1000000, default: 10000 },
          },
        },
        /** GET /api/v1/live, the console's Server-Sent Events feed (api/live.ts). */
        live: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            /** Streams open at once; past it 503. */
            maxConnections: { type: 'integer', minimum: 1, maximum: 10000, default: 100 },
            /** A comment line this often keeps idle streams open and rechecks the session. */
            heartbeatSeconds: { type: 'integer', minimum: 1, maximum: 300, default: 15 },
            /** One message per stream at most this often (the changes in between are merged). */
            intervalMs: { type: 'integer', minimum: 100, maximum: 60000, default: 1000 },
            /** A stream with more unsent bytes than this (its client stopped reading) is cut. */
            maxBufferedBytes: { type: 'integer', minimum: 1024, maximum: 67108864, default: 1048576 },
          },
        },
      },
    },
    broker: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** The built-in broker (used unless url is set). */
        embedded: listen('0.0.0.0', 1883),
        /** Connection limits of the embedded broker (an external broker has its own). */
        limits: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            /** Open connections in all (logged in or not); beyond, new ones are closed at once. */
            maxConnections: { type: 'integer', minimum: 1, maximum: 1000000, default: 10000 },
            /** Connections not yet logged in, in all and per client address; beyond, closed at once. */
            maxPendingConnections: { type: 'integer', minimum: 1, maximum: 100000, default: 512 },
            maxPendingPerAddress: { type: 'integer', minimum: 1, maximum: 100000, default: 64 },
            /** A connection whose CONNECT is not complete and accepted within this time is closed. */
            connectTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 600, default: 10 },
            /** Largest MQTT packet before login (a CONNECT with a last will is well under 1 KiB). */
            maxConnectBytes: { type: 'integer', minimum: 512, maximum: 1048576, default: 8192 },
            /** One summary warn line per interval for refused or dropped connections. */
            logIntervalSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 10 },
          },
        },
        /** An external broker (Mosquitto) instead of the embedded one. */
        url: MQTT_URL,
        username: { type: 'string', minLength: 1, default: 'groundcontrol' },
        password: { type: 'string' },
        clientId: { type: 'string', minLength: 1, maxLength: 64, default: 'groundcontrol' },
        /** Mosquitto password file Ground Control rewrites on every credential change. */
        passwordFile: { type: 'string', minLength: 1 },
        /** Run after the password file changed, e.g. ["systemctl", "reload", "mosquitto"]. */
        reloadCommand: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
      },
    },
    /** The broker URL satellites are told to use at registration. */
    publicMqttUrl: MQTT_URL,
    /** What satellites sync from: put into every desired state and registration answer. */
    upstream: upstreamTargetSchema,
    registrationTokenTtlSeconds: { type: 'integer', minimum: 1, maximum: 31536000, default: 86400 },
    /** The web console at /console (docs/groundcontrol.md#console). */
    console: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true },
        /** A console login lasts this long (sessions live in memory: a restart logs out). */
        sessionTtlSeconds: { type: 'integer', minimum: 60, maximum: 604800, default: 28800 },
      },
    },
    /** The event and audit log (GET /api/v1/events): the newest `kept` lines stay. */
    events: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        kept: { type: 'integer', minimum: 100, maximum: 10000000, default: 10000 },
        /** CloudEvents `source` of webhook deliveries; default urn:groundcontrol:<hostname>. */
        source: { type: 'string', minLength: 1, maxLength: 512, pattern: '^[^\\s]+$' },
        /** Outbound webhooks: each line of the log POSTed as a signed CloudEvent (docs/groundcontrol.md#webhooks). */
        webhooks: {
          type: 'array',
          default: [],
          maxItems: 32,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['url', 'secretFile'],
            properties: {
              url: { type: 'string', maxLength: 2048, pattern: '^https?://[^/\\s?#@]+(/[^\\s#]*)?$' },
              /** First line: the HMAC-SHA256 key (16+ characters); the file must not be readable by group or others. */
              secretFile: { type: 'string', minLength: 1 },
              /** Event types to send (audit, online, offline, image.failed, image.*); all when absent. */
              types: { type: 'array', minItems: 1, maxItems: 64, items: { type: 'string', pattern: '^([a-z][a-z0-9-]*)(\\.[a-z][a-z0-9-]*)*(\\.\\*)?$|^\\*$' } },
            },
          },
        },
        /** How webhooks are delivered: retries with exponential backoff and jitter, in order per webhook. */
        delivery: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            timeoutSeconds: { type: 'integer', minimum: 1, maximum: 300, default: 10 },
            /** First retry after about this long, doubling per failure up to maxBackoffSeconds. */
            initialBackoffMs: { type: 'integer', minimum: 100, maximum: 3600000, default: 1000 },
            maxBackoffSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 600 },
            /** An event is dropped (counted, logged) after this many attempts or this long since its first. */
            maxAttempts: { type: 'integer', minimum: 1, maximum: 100000, default: 200 },
            maxAgeSeconds: { type: 'integer', minimum: 1, maximum: 2592000, default: 86400 },
            /** Undelivered events kept per webhook; beyond, the oldest are dropped (counted, logged). */
            maxQueued: { type: 'integer', minimum: 1, maximum: 10000000, default: 10000 },
          },
        },
      },
    },
    /** Level and the bounded stdout buffer (docs/operations.md, "Logs"). */
    log: logConfigSchema,
  },
} as const;

export interface ListenConfig {
  host: string;
  port: number;
}

/** api.register: refusals of POST /register per client address. */
export interface RegisterLimitConfig {
  /** Refused registrations an address may make per window before it gets 429. */
  maxFailuresPerAddress: number;
  failureWindowSeconds: number;
  /** One summary warn line per interval for refused registrations. */
  logIntervalSeconds: number;
  /** Addresses remembered at once; the oldest window is forgotten first. */
  maxTrackedAddresses: number;
}

/** api.live: the Server-Sent Events feed. */
export interface LiveConfig {
  maxConnections: number;
  heartbeatSeconds: number;
  intervalMs: number;
  maxBufferedBytes: number;
}

/** broker.limits: what a client may hold before it has logged in. */
export interface BrokerLimitsConfig {
  maxConnections: number;
  maxPendingConnections: number;
  maxPendingPerAddress: number;
  connectTimeoutSeconds: number;
  maxConnectBytes: number;
  logIntervalSeconds: number;
}

export interface BrokerConfig {
  embedded: ListenConfig;
  limits: BrokerLimitsConfig;
  url?: string;
  username: string;
  password?: string;
  clientId: string;
  passwordFile?: string;
  reloadCommand?: string[];
}

export interface UpstreamConfig {
  url: string;
  username?: string;
  password?: string;
}

export interface WebhookConfig {
  url: string;
  secretFile: string;
  types?: string[];
}

export interface WebhookDeliveryConfig {
  timeoutSeconds: number;
  initialBackoffMs: number;
  maxBackoffSeconds: number;
  maxAttempts: number;
  maxAgeSeconds: number;
  maxQueued: number;
}

export interface EventsConfig {
  kept: number;
  source?: string;
  webhooks: WebhookConfig[];
  delivery: WebhookDeliveryConfig;
}

export interface GroundControlConfig {
  dataDir: string;
  restartBackoff: RestartBackoffConfig;
  adminTokenFile?: string;
  api: { listen: ListenConfig; maxBodyBytes: number; maxJsonDepth: number; register: RegisterLimitConfig; live: LiveConfig };
  broker: BrokerConfig;
  publicMqttUrl?: string;
  upstream?: UpstreamConfig;
  registrationTokenTtlSeconds: number;
  console: { enabled: boolean; sessionTtlSeconds: number };
  events: EventsConfig;
  log: LogConfig;
  /** From GROUNDCONTROL_ADMIN_TOKEN (never from the file): accepted as an admin token. */
  bootstrapAdminToken?: string;
}

/**
 * Reads and validates the config: file < environment (GROUNDCONTROL_DATA_DIR,
 * GROUNDCONTROL_LOG_LEVEL, GROUNDCONTROL_ADMIN_TOKEN). Relative paths resolve against the file's
 * directory. Throws CONFIG_INVALID naming every bad key.
 */
export async function loadGroundControlConfig(opts: { file?: string | undefined; env?: NodeJS.ProcessEnv } = {}): Promise<GroundControlConfig> {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.GROUNDCONTROL_CONFIG;
  const raw = file ? await readJsonObjectFile(file) : {};
  if (env.GROUNDCONTROL_DATA_DIR) raw.dataDir = env.GROUNDCONTROL_DATA_DIR;
  if (env.GROUNDCONTROL_LOG_LEVEL) raw.log = { ...(raw.log as object), level: env.GROUNDCONTROL_LOG_LEVEL };
  const config = validate<GroundControlConfig>(groundControlConfigSchema, raw, file ? `config ${file}` : 'config');
  const problems: string[] = [];
  if (config.broker.url && (raw.broker as { embedded?: unknown } | undefined)?.embedded) {
    problems.push('/broker: "embedded" and "url" exclude each other (url selects an external broker)');
  }
  if (config.broker.url && (raw.broker as { limits?: unknown } | undefined)?.limits) {
    problems.push('/broker/limits: only used by the embedded broker (an external broker has its own limits)');
  }
  if (!config.broker.url && (config.broker.passwordFile || config.broker.reloadCommand)) {
    problems.push('/broker/passwordFile: only used with an external broker (set /broker/url)');
  }
  // Named by index, not by value: a webhook URL's path may carry a token.
  const urls = new Map<string, number>();
  config.events.webhooks.forEach((w, i) => {
    const first = urls.get(w.url);
    if (first !== undefined) problems.push(`/events/webhooks/${i}/url: the same URL as /events/webhooks/${first}/url`);
    else urls.set(w.url, i);
    if (!URL.canParse(w.url)) problems.push(`/events/webhooks/${i}/url: not a valid URL`);
  });
  if (problems.length > 0) {
    throw new SatelliteError('CONFIG_INVALID', `invalid config${file ? ` ${file}` : ''}:\n  ${problems.join('\n  ')}`, { detail: problems });
  }
  const base = file ? dirname(resolve(file)) : process.cwd();
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  config.dataDir = abs(config.dataDir);
  if (config.adminTokenFile) config.adminTokenFile = abs(config.adminTokenFile);
  if (config.broker.passwordFile) config.broker.passwordFile = abs(config.broker.passwordFile);
  for (const w of config.events.webhooks) w.secretFile = abs(w.secretFile);
  if (env.GROUNDCONTROL_ADMIN_TOKEN) config.bootstrapAdminToken = env.GROUNDCONTROL_ADMIN_TOKEN;
  return deepFreeze(config);
}


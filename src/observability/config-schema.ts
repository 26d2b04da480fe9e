/**
 * The `metrics` section of the satellite config: the Prometheus endpoint on its own listener.
 * Default 127.0.0.1:9585, open on loopback only; any other address needs a token (checked at start,
 * see auth.ts), so nothing on the LAN reads the satellite's numbers unauthenticated.
 */
export const metricsConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    /** false = no metrics listener at all. */
    enabled: { type: 'boolean', default: true },
    listen: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        host: { type: 'string', minLength: 1, default: '127.0.0.1' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 9585 },
      },
    },
    /** Scrapers send `Authorization: Bearer <token>` (or Basic with the token as password). */
    token: { type: 'string', minLength: 16, maxLength: 256 },
    /** The token as the first line of a file (read once at start); wins over nothing, loses to token. */
    tokenFile: { type: 'string', minLength: 1 },
  },
} as const;

export interface MetricsConfig {
  enabled: boolean;
  listen: { host: string; port: number };
  token?: string;
  tokenFile?: string;
}

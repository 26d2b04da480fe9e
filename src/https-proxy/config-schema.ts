import { listenSchema } from '../lib/listen-schema.ts';

/**
 * The `httpsProxy` section: a CONNECT proxy that runtimes name in HTTPS_PROXY. Off by default;
 * when on, it listens on loopback and admits loopback clients only unless told otherwise.
 */
export interface HttpsProxyConfig {
  enabled: boolean;
  listen: { host: string; port: number };
  /** CIDRs (IPv4 or IPv6) of the clients admitted; others get 403 before anything else. */
  allowedClients: string[];
  /** Proxy credentials (`Proxy-Authorization: Basic`, i.e. HTTPS_PROXY=http://user:pass@host:port). */
  auth?: { username: string; password?: string; passwordFile?: string };
  /**
   * Registry hosts (`host` or `host:port`, port 443 when absent) the satellite answers itself:
   * the CONNECT is terminated with a site-CA certificate and the requests go to the registry
   * handler with `?ns=<host>` (so proxy.mirrors' namespaces select the upstream).
   */
  intercept: string[];
  /** Every other CONNECT: tunnelled byte for byte ('allow') or answered 403 ('refuse'). */
  tunnel: 'allow' | 'refuse';
  /**
   * Tunnels to loopback, link-local and unspecified addresses (the satellite's own private
   * listeners, cloud metadata) are refused unless this is true or the target is in `hosts`.
   */
  tunnelLoopback: boolean;
  /** Fixed addresses for names (`host:port` -> `ip:port`), used instead of DNS when dialling. */
  hosts: Record<string, string>;
  /** Where the site CA lives; default `<dataDir>/site-ca`. */
  caDir?: string;
  /** Open client connections at once; beyond, new ones are closed at once. */
  maxConnections: number;
  /** A tunnel or intercepted connection silent this long is closed. */
  idleTimeoutSeconds: number;
  /** Dialling a tunnel target must succeed within this. */
  connectTimeoutMs: number;
}

const AUTHORITY = '^[A-Za-z0-9.-]+(:[0-9]{1,5})?$';

export const httpsProxyConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: false },
    listen: listenSchema('127.0.0.1', 3128),
    allowedClients: {
      type: 'array',
      maxItems: 256,
      default: ['127.0.0.0/8', '::1/128'],
      items: { type: 'string', pattern: '^[0-9A-Fa-f:.]+/[0-9]{1,3}$' },
    },
    auth: {
      type: 'object',
      additionalProperties: false,
      required: ['username'],
      properties: {
        username: { type: 'string', minLength: 1, maxLength: 256, pattern: '^[^:]+$' },
        password: { type: 'string', minLength: 8, maxLength: 1024 },
        passwordFile: { type: 'string', minLength: 1 },
      },
      oneOf: [
        { properties: { password: true }, required: ['password'] },
        { properties: { passwordFile: true }, required: ['passwordFile'] },
      ],
    },
    intercept: { type: 'array', maxItems: 64, default: [], items: { type: 'string', pattern: AUTHORITY } },
    tunnel: { enum: ['allow', 'refuse'], default: 'allow' },
    tunnelLoopback: { type: 'boolean', default: false },
    hosts: {
      type: 'object',
      default: {},
      maxProperties: 64,
      propertyNames: { pattern: AUTHORITY },
      additionalProperties: { type: 'string', pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[0-9.]+):[0-9]{1,5}$' },
    },
    caDir: { type: 'string', minLength: 1 },
    maxConnections: { type: 'integer', minimum: 1, maximum: 100000, default: 512 },
    idleTimeoutSeconds: { type: 'integer', minimum: 1, maximum: 86400, default: 120 },
    connectTimeoutMs: { type: 'integer', minimum: 100, maximum: 120000, default: 10000 },
  },
} as const;

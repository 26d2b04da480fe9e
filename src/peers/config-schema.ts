/**
 * The `peers` section of the satellite config: blob sharing between the satellites of one site.
 * Absent section = no sharing. Members come from `static` and, when the satellite is managed, from
 * the site membership Ground Control publishes.
 */
export const peersConfigSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    /** This satellite's name in the site (what rendezvous hashing ranks); default control's satellite id, else advertiseUrl. */
    id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' },
    /** How the other members reach this satellite's registry, e.g. http://10.0.0.5:8585. */
    advertiseUrl: { type: 'string', pattern: '^https?://[^/\\s]+/?$' },
    /** The site's members; an entry for this satellite itself (same id or url) is ignored. */
    static: {
      type: 'array',
      maxItems: 256,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['url'],
        properties: {
          id: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' },
          url: { type: 'string', pattern: '^https?://[^/\\s]+/?$' },
        },
      },
    },
    /** Use the site membership Ground Control publishes (when control is configured). */
    fromGroundControl: { type: 'boolean', default: true },
    /** Shared secret every member of the site sends and requires (Authorization: Bearer). */
    token: { type: 'string', minLength: 16, maxLength: 256 },
    tokenFile: { type: 'string', minLength: 1 },
    /** After Ground Control rotates the site secret, the previous one is still accepted this long. */
    siteSecretGraceMs: { type: 'integer', minimum: 0, maximum: 86400000, default: 300000 },
    /** A peer that does not accept the connection this fast is skipped. */
    connectTimeoutMs: { type: 'integer', minimum: 50, maximum: 60000, default: 2000 },
    /** A peer that accepted but sends no response headers this fast is skipped. */
    firstByteTimeoutMs: { type: 'integer', minimum: 50, maximum: 60000, default: 2000 },
    /** Longest silence inside a peer's body before switching source (resuming from the bytes written). */
    idleTimeoutMs: { type: 'integer', minimum: 100, maximum: 600000, default: 5000 },
    /** One long-poll on the blob's owner waits at most this long before answering. */
    pollWaitMs: { type: 'integer', minimum: 100, maximum: 30000, default: 5000 },
    /** Total time an asker waits for the owner to fetch a blob; then it fetches from the upstream itself. */
    maxWaitMs: { type: 'integer', minimum: 0, maximum: 86400000, default: 1800000 },
    /** Waiting stops early when the owner's download makes no progress for this long. */
    stallMs: { type: 'integer', minimum: 500, maximum: 600000, default: 15000 },
    /** A peer that failed (refused, timed out) is not asked again for this long. */
    downCooldownMs: { type: 'integer', minimum: 0, maximum: 3600000, default: 30000 },
    /** Fetch a blob from the upstream when a peer asks for one this satellite owns but lacks. */
    fetchOnRequest: { type: 'boolean', default: true },
    /** Fetches on behalf of peers at once (beyond the sync engine's own). */
    maxOnRequestFetches: { type: 'integer', minimum: 0, maximum: 64, default: 4 },
    /** Connections per peer. */
    maxConnections: { type: 'integer', minimum: 1, maximum: 256, default: 8 },
  },
} as const;

export interface PeerEntry {
  id?: string;
  url: string;
}

export interface PeersConfig {
  id?: string;
  advertiseUrl?: string;
  static?: PeerEntry[];
  fromGroundControl: boolean;
  token?: string;
  tokenFile?: string;
  siteSecretGraceMs: number;
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  pollWaitMs: number;
  maxWaitMs: number;
  stallMs: number;
  downCooldownMs: number;
  fetchOnRequest: boolean;
  maxOnRequestFetches: number;
  maxConnections: number;
}

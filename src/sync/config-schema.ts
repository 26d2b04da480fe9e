/** The `sync` section of the satellite config. */
export const syncConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    /** A local desired-state file, watched for changes. */
    desiredStateFile: { type: 'string', minLength: 1 },
    /** A directory imported at start when it holds a bundle (docs/bundles.md): first boot without a link. */
    bundleDir: { type: 'string', minLength: 1 },
    /** While running, sync.bundleDir is checked this often for a new bundle.json (a stick mounted later); 0: only at start. */
    bundleWatchSeconds: { type: 'integer', minimum: 0, maximum: 86400, default: 10 },
    /** Repository for the images of a plain OCI layout (no bundle.json) that index.json names by a bare tag (`oci:DIR:1.4`). */
    layoutRepository: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*$' },
    /** PEM file with Ground Control's bundle signing public key(s) (`groundcontrol bundle key`), besides the one from registration. */
    bundleKeyFile: { type: 'string', minLength: 1 },
    /** Refuse bundles not signed by Ground Control (BUNDLE_UNSIGNED). A bad signature is refused either way. */
    requireSignedBundles: { type: 'boolean', default: false },
    /** Re-resolve tags and retry failures this often. */
    intervalSeconds: { type: 'integer', minimum: 1, maximum: 604800, default: 300 },
    /**
     * Platform filter ("os/arch[/variant]") for images whose desired state names none (neither the
     * image nor the document): a board profile keeps only what the device can run.
     */
    platforms: { type: 'array', items: { type: 'string', pattern: '^[a-z0-9_.-]+/[a-z0-9_.-]+(/[a-z0-9_.-]+)?$' }, maxItems: 32 },
    /** Blobs downloaded at once. */
    concurrency: { type: 'integer', minimum: 1, maximum: 64, default: 3 },
    /**
     * Tags resolved and manifests fetched at once while planning (each one round trip; on a long
     * link they should all be in flight together). Bounded by upstream.maxConnections on HTTP/1.1.
     */
    planConcurrency: { type: 'integer', minimum: 1, maximum: 256, default: 32 },
    /** Sum of all downloads, bytes per second; absent = unlimited. */
    bandwidthBytesPerSecond: { type: 'integer', minimum: 1024 },
    /** Cron expressions (5 fields) naming the minutes downloads may run; absent = always. */
    windows: { type: 'array', items: { type: 'string', minLength: 9 }, maxItems: 32 },
    windowTimezone: { type: 'string', minLength: 1 },
    /** What an active download does when its window closes. */
    windowEnd: { enum: ['finish', 'pause'], default: 'pause' },
    caps: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        hourBytes: { type: 'integer', minimum: 0 },
        dayBytes: { type: 'integer', minimum: 0 },
        monthBytes: { type: 'integer', minimum: 0 },
      },
    },
    checkpointBytes: { type: 'integer', minimum: 65536, default: 4194304 },
    retry: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        /** Attempts in a row without progress before a blob fails for this run. */
        attempts: { type: 'integer', minimum: 1, maximum: 100, default: 6 },
        baseMs: { type: 'integer', minimum: 1, default: 500 },
        maxMs: { type: 'integer', minimum: 1, default: 60000 },
      },
    },
    /**
     * While images wait for disk space (DISK_FULL), runs are held: the next one starts when enough
     * space was freed, the desired state changed, or after this long.
     */
    diskFullRetrySeconds: { type: 'integer', minimum: 1, maximum: 604800, default: 3600 },
    /** Run garbage collection after images are removed. */
    gcAfterPrune: { type: 'boolean', default: true },
    /**
     * OCI 1.1 referrers read per image when its signatures are checked (descriptors over all
     * pages of the referrers API, or in the fallback tag's index); past it the rest are not read.
     */
    maxReferrers: { type: 'integer', minimum: 1, maximum: 4096, default: 64 },
  },
} as const;

export interface SyncConfig {
  desiredStateFile?: string;
  bundleDir?: string;
  bundleWatchSeconds: number;
  layoutRepository?: string;
  bundleKeyFile?: string;
  requireSignedBundles: boolean;
  intervalSeconds: number;
  platforms?: string[];
  concurrency: number;
  planConcurrency: number;
  bandwidthBytesPerSecond?: number;
  windows?: string[];
  windowTimezone?: string;
  windowEnd: 'finish' | 'pause';
  caps: { hourBytes?: number; dayBytes?: number; monthBytes?: number };
  checkpointBytes: number;
  retry: { attempts: number; baseMs: number; maxMs: number };
  diskFullRetrySeconds: number;
  gcAfterPrune: boolean;
  maxReferrers: number;
}

/**
 * The `memory` section of the satellite config: the watchdog that sheds load before the board's
 * limit (docs/operations.md, "Memory"). Board profiles set the limits; the plain default is off.
 */
export const memoryConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    /** RSS above which new blob streams get 429 and sync downloads pause; 0 = no byte limit. */
    softLimitBytes: { type: 'integer', minimum: 0, maximum: 1099511627776, default: 0 },
    /** Shedding stops once RSS is back under this; 0 = 85 % of the soft limit. Must be below it. */
    resumeBytes: { type: 'integer', minimum: 0, maximum: 1099511627776, default: 0 },
    /**
     * Under a cgroup v2 memory.max (systemd's MemoryMax=): soft limit at this percentage of it; the
     * lower of this and softLimitBytes wins. 0 = not used.
     */
    softLimitPercent: { type: 'number', minimum: 0, maximum: 100, default: 0 },
    /** How often RSS is read. */
    sampleIntervalMs: { type: 'integer', minimum: 100, maximum: 60000, default: 1000 },
    /** Retry-After of the 429 answers while shedding. */
    retryAfterSeconds: { type: 'integer', minimum: 1, maximum: 3600, default: 5 },
  },
} as const;

export interface MemoryConfig {
  softLimitBytes: number;
  resumeBytes: number;
  softLimitPercent: number;
  sampleIntervalMs: number;
  retryAfterSeconds: number;
}

/** The `log` section of both programs' config (satellite and Ground Control). */
export const logConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
    /** Most bytes of log lines held for a destination that cannot keep up; past it lines are dropped. */
    bufferBytes: { type: 'integer', minimum: 65536, maximum: 67108864, default: 1048576 },
  },
} as const;

export interface LogConfig {
  level: string;
  bufferBytes: number;
}

export const DEFAULT_LOG_BUFFER_BYTES = logConfigSchema.properties.bufferBytes.default;

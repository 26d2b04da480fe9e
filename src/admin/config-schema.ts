/** The admin socket `satellite status|images|sync|gc|verify` talk to (docs/operations.md, CLI). */
export const adminConfigSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: true },
    /** Unix socket path; default <$RUNTIME_DIRECTORY or dataDir/run>/satellite.sock. */
    socket: { type: 'string', minLength: 1 },
  },
} as const;

export interface AdminConfig {
  enabled: boolean;
  /** Always set after loading (the default is resolved then). */
  socket: string;
}

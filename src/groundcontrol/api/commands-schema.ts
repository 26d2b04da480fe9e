/** `args` of a command in API bodies: `{repair: true}` with verify (quarantine bad blobs, re-sync). */
export const COMMAND_ARGS = {
  type: 'object',
  additionalProperties: false,
  properties: { repair: { type: 'boolean' } },
} as const;

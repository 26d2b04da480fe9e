/** JSON Schema of a `{ host, port }` listen address with its defaults (port 0: any free port). */
export function listenSchema(host: string, port: number) {
  return {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: {
      host: { type: 'string', minLength: 1, default: host },
      port: { type: 'integer', minimum: 0, maximum: 65535, default: port },
    },
  } as const;
}

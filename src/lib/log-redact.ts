/**
 * pino redact paths for credentials, shared by both programs: Authorization headers, passwords
 * and tokens at the top of a log record or one level down, and the upstream account wherever a
 * desired state, a registration answer or a config slice is logged whole.
 */
export const CREDENTIAL_REDACT_PATHS: string[] = [
  'req.headers.authorization',
  'headers.authorization',
  'password',
  '*.password',
  'token',
  '*.token',
  'upstream.password',
  '*.upstream.password',
  '*.*.upstream.password',
  'state.upstream.password',
  '*.state.upstream.password',
];

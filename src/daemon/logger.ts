import { pino, type Logger } from 'pino';
import { CREDENTIAL_REDACT_PATHS } from '../lib/log-redact.ts';

/** One JSON logger to stdout (journald collects it); credentials never reach the log. */
export function createLogger(level: string, name = 'satellite'): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    redact: {
      paths: CREDENTIAL_REDACT_PATHS,
      censor: '[redacted]',
    },
  });
}

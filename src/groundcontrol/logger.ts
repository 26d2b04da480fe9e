import { pino, type Logger } from 'pino';
import { CREDENTIAL_REDACT_PATHS } from '../lib/log-redact.ts';

/** One JSON logger to stdout; tokens, passwords and Authorization headers never reach the log. */
export function createGcLogger(level: string): Logger {
  return pino({
    name: 'groundcontrol',
    level,
    base: { pid: process.pid },
    redact: {
      paths: CREDENTIAL_REDACT_PATHS,
      censor: '[redacted]',
    },
  });
}

import { pino, type Logger } from 'pino';

/** One JSON logger to stdout (journald collects it); credentials never reach the log. */
export function createLogger(level: string, name = 'satellite'): Logger {
  return pino({
    name,
    level,
    base: { pid: process.pid },
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'password', '*.password', 'token', '*.token'],
      censor: '[redacted]',
    },
  });
}

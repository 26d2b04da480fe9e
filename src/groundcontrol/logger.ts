import { pino, type Logger } from 'pino';

/** One JSON logger to stdout; tokens, passwords and Authorization headers never reach the log. */
export function createGcLogger(level: string): Logger {
  return pino({
    name: 'groundcontrol',
    level,
    base: { pid: process.pid },
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'password', '*.password', 'token', '*.token'],
      censor: '[redacted]',
    },
  });
}

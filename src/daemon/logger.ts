import type { Logger } from 'pino';
import { createJsonLogger } from '../lib/json-logger.ts';
import type { LogConfig } from '../lib/log-config.ts';

/**
 * The satellite's root logger: JSON lines to stdout through a bounded, non-blocking sink
 * (a full disk or a stalled reader drops and counts lines, it never stops the registry).
 */
export function createLogger(config: Pick<LogConfig, 'level'> & Partial<LogConfig>, name = 'satellite'): Logger {
  return createJsonLogger(name, config);
}

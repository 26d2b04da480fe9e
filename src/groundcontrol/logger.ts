import type { Logger } from 'pino';
import { createJsonLogger } from '../lib/json-logger.ts';
import type { LogConfig } from '../lib/log-config.ts';

/** Ground Control's root logger: the same bounded, non-blocking stdout sink as the satellite's. */
export function createGcLogger(config: Pick<LogConfig, 'level'> & Partial<LogConfig>): Logger {
  return createJsonLogger('groundcontrol', config);
}

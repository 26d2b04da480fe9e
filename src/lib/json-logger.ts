import { pino, symbols, type Logger } from 'pino';
import { LogSink, type LogCounters } from './log-sink.ts';
import { DEFAULT_LOG_BUFFER_BYTES } from './log-config.ts';
import { CREDENTIAL_REDACT_PATHS } from './log-redact.ts';

/**
 * One JSON logger to stdout (journald, a container log or a file collects it) through a bounded,
 * non-blocking LogSink; credentials never reach the log. When lines had to be dropped it says so
 * once the destination takes lines again: `{"droppedLines":N,"msg":"N log lines dropped"}`.
 */
export function createJsonLogger(name: string, config: { level: string; bufferBytes?: number | undefined }): Logger {
  const sink = new LogSink({ bufferBytes: config.bufferBytes ?? DEFAULT_LOG_BUFFER_BYTES });
  const log = pino(
    {
      name,
      level: config.level,
      base: { pid: process.pid },
      redact: { paths: CREDENTIAL_REDACT_PATHS, censor: '[redacted]' },
    },
    sink,
  );
  const own = log.child({ module: 'log' });
  sink.onRecovered = (n) => own.warn({ droppedLines: n, total: sink.stats().droppedLines }, `${n} log lines dropped`);
  return log;
}

/** The counters of the sink under `log` (or any of its children), if it writes through a LogSink. */
export function logCounters(log: Logger): LogCounters | undefined {
  const stream = (log as unknown as Record<symbol, unknown>)[symbols.streamSym];
  return stream instanceof LogSink ? stream : undefined;
}

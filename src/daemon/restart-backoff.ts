import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { RestartBackoff, type RestartBackoffConfig } from '../lib/restart-backoff.ts';
import type { SystemdNotifier } from './notify.ts';

/**
 * Under systemd (it sets INVOCATION_ID for every service) records this start and, after quick
 * failures in a row, waits before going on (SIGTERM via `signal` cuts the wait short). Outside
 * systemd a developer's or a test's quick restarts never wait. Returns the record to close with
 * end() on a clean stop, or undefined when the back-off is off.
 */
export async function beginRestartBackoff(opts: {
  dataDir: string;
  config: RestartBackoffConfig;
  log: Pick<Logger, 'warn'>;
  notify: SystemdNotifier;
  signal: AbortSignal;
  env?: NodeJS.ProcessEnv;
}): Promise<RestartBackoff | undefined> {
  const env = opts.env ?? process.env;
  if (!opts.config.enabled || !env.INVOCATION_ID) return undefined;
  const backoff = new RestartBackoff(opts.dataDir, opts.config);
  let begun;
  try {
    begun = await backoff.begin();
  } catch (err) {
    // Bookkeeping must not keep the service down; a data dir that cannot be written fails later, loudly.
    opts.log.warn({ err }, 'cannot record this start; no restart back-off');
    return undefined;
  }
  if (begun.damaged) opts.log.warn('restart back-off record was unreadable; starting the count again');
  if (begun.delayMs > 0) {
    opts.log.warn({ failures: begun.failures, delayMs: begun.delayMs }, 'restart back-off: the last runs failed soon after starting; waiting');
    opts.notify.starting(`restart back-off: waiting ${begun.delayMs / 1000} s after ${begun.failures} quick failure(s)`);
    await sleep(begun.delayMs, undefined, { signal: opts.signal }).catch(() => undefined);
  }
  return backoff;
}

import type { Logger } from 'pino';
import type { SatelliteConfig } from '../config/index.ts';
import type { UpstreamTarget } from '../sync/index.ts';
import { UpstreamClient } from '../upstream/index.ts';

/**
 * Builds the sync engine's upstream clients. Credentials, in order: the desired state's, the ones
 * Ground Control issued at registration (for that same origin only), the config's.
 */
export function upstreamFactory(
  defaults: SatelliteConfig['upstream'],
  issued: { url: string; username?: string; password?: string } | null,
  log: Logger,
) {
  return (target: UpstreamTarget, meter: (bytes: number) => void) => {
    let creds: { username?: string; password?: string } = {};
    if (target.username !== undefined) creds = { username: target.username, password: target.password ?? '' };
    else if (issued?.username !== undefined && sameOrigin(issued.url, target.url)) creds = { username: issued.username, password: issued.password ?? '' };
    return new UpstreamClient({ ...defaults, ...creds, url: target.url }, log, { meter });
  };
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

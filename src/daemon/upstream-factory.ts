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

/**
 * The pull-through proxy's client: the top-level upstream settings with the proxy's tighter
 * deadlines (a device waits on every miss), and enough connections for its concurrent fetches.
 */
export function proxyUpstreamFactory(
  defaults: SatelliteConfig['upstream'],
  proxy: SatelliteConfig['proxy'],
  issued: { url: string; username?: string; password?: string } | null,
  log: Logger,
) {
  const tuned = {
    ...defaults,
    headersTimeoutMs: Math.min(defaults.headersTimeoutMs, proxy.firstByteTimeoutMs),
    connectTimeoutMs: Math.min(defaults.connectTimeoutMs, proxy.firstByteTimeoutMs),
    bodyIdleTimeoutMs: Math.min(defaults.bodyIdleTimeoutMs, proxy.idleTimeoutMs),
    maxConnections: Math.max(defaults.maxConnections, Math.min(proxy.maxConcurrentFetches, 64)),
    // One retry (a kept-alive socket the upstream closed); more would keep a device waiting.
    retries: Math.min(defaults.retries, 1),
  };
  return upstreamFactory(tuned, issued, log);
}

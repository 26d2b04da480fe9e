import type { Logger } from 'pino';
import type { SatelliteConfig } from '../config/index.ts';
import type { UpstreamPort, UpstreamTarget } from '../sync/index.ts';
import type { UpstreamClient } from '../upstream/index.ts';

type UpstreamModule = typeof import('../upstream/index.ts');
/** The upstream client (undici and its HTTP parser) is loaded on first use: an idle board never needs it. */
const loadUpstream = (): Promise<UpstreamModule> => import('../upstream/index.ts');

/** An UpstreamPort whose client is built when its first request is made. */
class LazyUpstream implements UpstreamPort {
  readonly #make: (m: UpstreamModule) => UpstreamClient;
  #client: Promise<UpstreamClient> | undefined;

  constructor(make: (m: UpstreamModule) => UpstreamClient) {
    this.#make = make;
  }

  #get(): Promise<UpstreamClient> {
    return (this.#client ??= loadUpstream().then(this.#make));
  }

  async ping(signal?: AbortSignal) {
    return (await this.#get()).ping(signal);
  }

  async getManifest(repo: string, reference: string, signal?: AbortSignal) {
    return (await this.#get()).getManifest(repo, reference, signal);
  }

  async prepare(repositories: readonly string[]): Promise<void> {
    return (await this.#get()).prepare(repositories);
  }

  async getManifestIfChanged(repo: string, reference: string, known: string, signal?: AbortSignal) {
    return (await this.#get()).getManifestIfChanged(repo, reference, known, signal);
  }

  async getReferrers(repo: string, digest: string, opts?: { artifactType?: string; next?: string }, signal?: AbortSignal) {
    return (await this.#get()).getReferrers(repo, digest, opts, signal);
  }

  async fetchBlob(repo: string, digest: string, opts?: { offset?: number; signal?: AbortSignal; size?: number }) {
    return (await this.#get()).fetchBlob(repo, digest, opts);
  }

  async close(): Promise<void> {
    if (this.#client) await (await this.#client).close();
  }
}

/**
 * Builds the sync engine's upstream clients. Credentials, in order: the desired state's, the ones
 * Ground Control issued at registration (for that same origin only), the config's.
 */
export function upstreamFactory(
  defaults: SatelliteConfig['upstream'],
  issued: { url: string; username?: string; password?: string } | null,
  log: Logger,
): (target: UpstreamTarget, meter: (bytes: number) => void) => UpstreamPort {
  return (target, meter) => new LazyUpstream((m) => clientFor(m, defaults, issued, log, target, meter));
}

function clientFor(
  m: UpstreamModule,
  defaults: SatelliteConfig['upstream'],
  issued: { url: string; username?: string; password?: string } | null,
  log: Logger,
  target: UpstreamTarget,
  meter: (bytes: number) => void,
): UpstreamClient {
  let creds: { username?: string; password?: string } = {};
  if (target.username !== undefined) creds = { username: target.username, password: target.password ?? '' };
  else if (issued?.username !== undefined && sameOrigin(issued.url, target.url)) creds = { username: issued.username, password: issued.password ?? '' };
  return new m.UpstreamClient({ ...defaults, ...creds, url: target.url }, log, { meter });
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
export async function proxyUpstreamFactory(
  defaults: SatelliteConfig['upstream'],
  proxy: SatelliteConfig['proxy'],
  issued: { url: string; username?: string; password?: string } | null,
  log: Logger,
): Promise<(target: UpstreamTarget, meter: (bytes: number) => void) => UpstreamClient> {
  const tuned = {
    ...defaults,
    headersTimeoutMs: Math.min(defaults.headersTimeoutMs, proxy.firstByteTimeoutMs),
    connectTimeoutMs: Math.min(defaults.connectTimeoutMs, proxy.firstByteTimeoutMs),
    bodyIdleTimeoutMs: Math.min(defaults.bodyIdleTimeoutMs, proxy.idleTimeoutMs),
    maxConnections: Math.max(defaults.maxConnections, Math.min(proxy.maxConcurrentFetches, 64)),
    // One retry (a kept-alive socket the upstream closed); more would keep a device waiting.
    retries: Math.min(defaults.retries, 1),
  };
  const m = await loadUpstream();
  return (target, meter) => clientFor(m, tuned, issued, log, target, meter);
}

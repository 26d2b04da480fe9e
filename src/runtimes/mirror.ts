import { readFile } from 'node:fs/promises';
import type { RuntimesConfig, UpstreamEntry } from './config-schema.ts';
import { RuntimeErrorCode, runtimeError } from './errors.ts';
import type { ProxyRoute } from './proxy-route.ts';

/** How runtimes reach the satellite. */
export interface MirrorTarget {
  /** e.g. http://127.0.0.1:8585 (no trailing slash) */
  url: string;
  /** host[:port] as registries.conf, docker's insecure-registries and k3s configs want it */
  hostPort: string;
  https: boolean;
  /** CA file runtimes should trust (HTTPS only). */
  caFile: string | undefined;
  /** Plain HTTP, or HTTPS without a CA: runtimes must be told the mirror is "insecure". */
  insecure: boolean;
  dialTimeout: string;
}

/** One registry host whose pulls go to the satellite first. */
export interface UpstreamTarget {
  /** As in image references: registry.example.com, upstream.test:5000, docker.io */
  host: string;
  /** Where the runtime falls back to, e.g. https://registry.example.com */
  server: string;
  /** The server's host[:port] (registries.conf location). */
  serverHostPort: string;
  /** The server speaks plain HTTP (only when configured so). */
  serverHttp: boolean;
  /** server is the runtime's own default for host (so k3s need not list it). */
  defaultServer: boolean;
}

export interface MirrorSpec {
  mirror: MirrorTarget;
  upstreams: UpstreamTarget[];
  /** The HTTPS proxy route, when runtimes.httpsProxy.enabled (docker and containerd units). */
  proxy?: ProxyRoute | undefined;
}

export interface RegistryListen {
  listen: { host: string; port: number };
  tls?: { cert: string; key: string } | undefined;
}

const trimSlash = (u: string) => u.replace(/\/+$/, '');

function defaultServerFor(host: string): string {
  return host === 'docker.io' ? 'https://registry-1.docker.io' : `https://${host}`;
}

export function upstreamTarget(entry: UpstreamEntry): UpstreamTarget {
  const host = typeof entry === 'string' ? entry : entry.host;
  const given = typeof entry === 'string' ? undefined : entry.server;
  const server = trimSlash(given ?? defaultServerFor(host));
  const url = new URL(server);
  return { host, server, serverHostPort: url.host, serverHttp: url.protocol === 'http:', defaultServer: server === defaultServerFor(host) };
}

/**
 * The mirror URL: runtimes.mirrorUrl, else the registry's listen address (127.0.0.1 when it listens
 * on every interface) with https when registry.tls is set. `port` overrides listen.port (the port
 * actually bound when it is 0).
 */
export function mirrorTarget(runtimes: RuntimesConfig, registry: RegistryListen, port?: number): MirrorTarget {
  let url = runtimes.mirrorUrl;
  if (!url) {
    const p = port ?? registry.listen.port;
    if (!p) throw runtimeError(RuntimeErrorCode.configInvalid, 'invalid config:\n  /runtimes/mirrorUrl: required when /registry/listen/port is 0');
    const h = registry.listen.host;
    const host = h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h;
    url = `${registry.tls ? 'https' : 'http'}://${host}:${p}`;
  }
  url = trimSlash(url);
  const parsed = new URL(url);
  const https = parsed.protocol === 'https:';
  const hostPort = parsed.host;
  const caFile = https ? runtimes.caFile : undefined;
  return { url, hostPort, https, caFile, insecure: !https || !caFile, dialTimeout: runtimes.dialTimeout };
}

/**
 * runtimes.upstreams, else the host of the upstream URL in sync.desiredStateFile (the registry the
 * satellite replicates from is the one devices name in their image references).
 */
export async function upstreamEntries(runtimes: RuntimesConfig, desiredStateFile?: string): Promise<UpstreamEntry[]> {
  if (runtimes.upstreams?.length) return runtimes.upstreams;
  if (desiredStateFile) {
    try {
      const doc = JSON.parse(await readFile(desiredStateFile, 'utf8')) as { upstream?: { url?: unknown } };
      if (typeof doc.upstream?.url === 'string') return [new URL(doc.upstream.url).host];
    } catch {
      // fall through to the error below
    }
  }
  throw runtimeError(
    RuntimeErrorCode.configInvalid,
    'invalid config:\n  /runtimes/upstreams: list the registry hosts devices pull from (e.g. ["registry.example.com", "docker.io"])',
  );
}

export async function mirrorSpec(
  runtimes: RuntimesConfig,
  registry: RegistryListen,
  opts: { desiredStateFile?: string | undefined; port?: number } = {},
): Promise<MirrorSpec> {
  const mirror = mirrorTarget(runtimes, registry, opts.port);
  const entries = await upstreamEntries(runtimes, opts.desiredStateFile);
  const seen = new Set<string>();
  const upstreams: UpstreamTarget[] = [];
  for (const e of entries) {
    const u = upstreamTarget(e);
    if (seen.has(u.host)) throw runtimeError(RuntimeErrorCode.configInvalid, `invalid config:\n  /runtimes/upstreams: ${u.host} is listed twice`);
    seen.add(u.host);
    upstreams.push(u);
  }
  return { mirror, upstreams };
}

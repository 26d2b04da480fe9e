import { join } from 'node:path';
import { parseAuthority, readSiteCaCert, type HttpsProxyConfig } from '../https-proxy/index.ts';
import type { RuntimeName, RuntimesConfig } from './config-schema.ts';
import { RuntimeErrorCode, runtimeError } from './errors.ts';
import type { RuntimeTargets, TargetFile } from './target.ts';
import type { MirrorSpec } from './mirror.ts';

/** The HTTPS proxy route as runtimes are told about it (runtimes.httpsProxy). */
export interface ProxyRoute {
  /** HTTPS_PROXY, e.g. http://127.0.0.1:3128 */
  url: string;
  noProxy: string[];
  /** Registry hosts the satellite answers (their certs.d directories get the site CA). */
  intercept: string[];
  /** The site CA certificate (PEM). */
  caPem: string;
  /** Proxy credentials are configured but not written into the world-readable drop-in. */
  authConfigured: boolean;
}

export const DROP_IN_NAME = '50-harbor-satellite-proxy.conf';

const UNITS: Partial<Record<RuntimeName, string>> = { docker: 'docker.service', containerd: 'containerd.service' };

/**
 * runtimes.httpsProxy.enabled: the route from the satellite's httpsProxy section and its site CA
 * (created by the daemon on its first start with httpsProxy.enabled); undefined when off.
 */
export async function proxyRoute(runtimes: RuntimesConfig, httpsProxy: HttpsProxyConfig | undefined, dataDir: string): Promise<ProxyRoute | undefined> {
  const r = runtimes.httpsProxy;
  if (!r.enabled) return undefined;
  if (!httpsProxy?.enabled) throw runtimeError(RuntimeErrorCode.configInvalid, 'invalid config:\n  /runtimes/httpsProxy/enabled: needs /httpsProxy/enabled true');
  if (!httpsProxy.intercept.length) throw runtimeError(RuntimeErrorCode.configInvalid, 'invalid config:\n  /httpsProxy/intercept: list the registry hosts the satellite answers');
  let url = r.url;
  if (!url) {
    const { host: h, port } = httpsProxy.listen;
    if (!port) throw runtimeError(RuntimeErrorCode.configInvalid, 'invalid config:\n  /runtimes/httpsProxy/url: required when /httpsProxy/listen/port is 0');
    const host = h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h;
    url = `http://${host}:${port}`;
  }
  let caPem: string;
  try {
    caPem = await readSiteCaCert(httpsProxy, dataDir, 'httpsProxy.enabled');
  } catch (err) {
    throw runtimeError(RuntimeErrorCode.configInvalid, `${(err as Error).message}, then apply`, { cause: err });
  }
  return { url: url.replace(/\/+$/, ''), noProxy: r.noProxy, intercept: httpsProxy.intercept, caPem, authConfigured: httpsProxy.auth !== undefined };
}

/**
 * Adds the drop-in (docker, containerd) and the site CA to a runtime's targets: docker's certs.d
 * for every intercepted host; containerd's certs.d for intercepted hosts without a hosts.toml of
 * the mirror route (containerd reads `*.crt` there only when no hosts.toml exists).
 */
export function withProxyRoute(targets: RuntimeTargets, runtimes: RuntimesConfig, spec: MirrorSpec): RuntimeTargets {
  const route = spec.proxy;
  const unit = UNITS[targets.runtime];
  if (!route || !unit) return targets;
  const files: TargetFile[] = [...targets.files];
  const dropIn = join(runtimes.httpsProxy.systemdDir, `${unit}.d`, DROP_IN_NAME);
  files.push({ runtime: targets.runtime, path: dropIn, render: () => renderDropIn(route) });
  if (targets.runtime === 'docker') {
    // docker.io images are fetched from registry-1.docker.io: that is the host docker checks.
    for (const host of route.intercept) {
      files.push({ runtime: 'docker', path: join(runtimes.httpsProxy.dockerCertsDir, parseAuthority(host)?.key ?? host, 'ca.crt'), render: () => route.caPem });
    }
  }
  if (targets.runtime === 'containerd') {
    const mirrored = new Set(spec.upstreams.map((u) => u.host));
    for (const host of route.intercept) {
      const key = parseAuthority(host)?.key ?? host;
      if (!mirrored.has(key)) files.push({ runtime: 'containerd', path: join(runtimes.containerd.certsDir, key, 'ca.crt'), render: () => route.caPem });
    }
  }
  const extra: string[] = [];
  if (targets.runtime === 'containerd' && !runtimes.containerd.setConfigPath) {
    extra.push(`containerd's CRI plugin reads ${runtimes.containerd.certsDir} (and the site CA there) only with its config_path set: runtimes.containerd.setConfigPath`);
  }
  const warnings = [...targets.warnings, ...extra, `${unit} reads ${dropIn} after \`systemctl daemon-reload\` and a restart of ${unit}`];
  if (route.authConfigured) warnings.push('httpsProxy.auth is set: the drop-in carries no credentials (it is world-readable); let this host in through httpsProxy.allowedClients without auth, or add them by hand');
  return { ...targets, files, warnings };
}

/** The systemd drop-in: the satellite's own file, replaced whole (a previous one is backed up by apply). */
export function renderDropIn(route: ProxyRoute): string {
  const q = (s: string) => `"${s.replace(/["\\]/g, '\\$&')}"`;
  const noProxy = route.noProxy.join(',');
  return [
    '# Written by `satellite runtime apply` (harbor-satellite); `satellite runtime revert` removes it.',
    '# Registry pulls go through the satellite HTTPS proxy; it answers the hosts it is configured for and',
    '# tunnels every other host unchanged.',
    '[Service]',
    `Environment=${q(`HTTPS_PROXY=${route.url}`)} ${q(`https_proxy=${route.url}`)}`,
    `Environment=${q(`NO_PROXY=${noProxy}`)} ${q(`no_proxy=${noProxy}`)}`,
    '',
  ].join('\n');
}

import { join } from 'node:path';
import { stringify } from 'smol-toml';
import { RuntimeErrorCode, runtimeError } from './errors.ts';
import type { MirrorSpec, MirrorTarget, UpstreamTarget } from './mirror.ts';
import type { RuntimesConfig } from './config-schema.ts';
import type { RuntimeTargets, TargetFile } from './target.ts';
import { isTable, parseToml } from './toml.ts';
import { setCriConfigPath } from './containerd-config.ts';

/**
 * containerd: one `<certsDir>/<host>/hosts.toml` per upstream: the satellite as the first host
 * (pull, resolve), then `server` = the upstream as fallback. Optionally the CRI plugin's
 * `config_path` in config.toml.
 */
export function containerdTargets(config: RuntimesConfig['containerd'], spec: MirrorSpec): RuntimeTargets {
  const files: TargetFile[] = spec.upstreams.map((u) => {
    const path = join(config.certsDir, u.host, 'hosts.toml');
    return { runtime: 'containerd', path, render: (current, file) => renderHostsToml(current, file, u, spec.mirror) };
  });
  if (config.setConfigPath) {
    const path = config.configToml;
    files.push({ runtime: 'containerd', path, render: (current, file) => setCriConfigPath(current, file, config.certsDir) });
  }
  return { runtime: 'containerd', files, warnings: [] };
}

function mirrorHost(mirror: MirrorTarget): Record<string, unknown> {
  const host: Record<string, unknown> = { capabilities: ['pull', 'resolve'] };
  if (mirror.https && mirror.caFile) host.ca = mirror.caFile;
  else if (mirror.https) host.skip_verify = true;
  // containerd 1.6 ignores it (30 s default); 1.7+ gives up on an unreachable satellite quickly.
  host.dial_timeout = mirror.dialTimeout;
  return host;
}

const HEADER = '# Written by harbor-satellite (satellite runtime apply): the satellite first, then the upstream.\n# `satellite runtime revert` restores what was here before.\n';

/**
 * Merges into an existing hosts.toml: its `server` and other hosts are kept (after the
 * satellite: containerd tries hosts in file order), the satellite's host entry is replaced.
 */
export function renderHostsToml(current: string | undefined, file: string, upstream: UpstreamTarget, mirror: MirrorTarget): string {
  const doc = current === undefined ? {} : parseToml(current, file);
  const hosts = doc.host ?? {};
  if (!isTable(hosts)) throw runtimeError(RuntimeErrorCode.fileInvalid, `${file}: "host" must be a table; nothing was changed`);
  const { server, host: _host, ...rest } = doc;
  const others = Object.fromEntries(Object.entries(hosts).filter(([url]) => url.replace(/\/+$/, '') !== mirror.url));
  const out = {
    // An explicit runtimes.upstreams server wins; else the user's own server is kept.
    server: typeof server === 'string' && upstream.defaultServer ? server : upstream.server,
    ...rest,
    host: { [mirror.url]: mirrorHost(mirror), ...others },
  };
  return `${HEADER}${stringify(out)}\n`;
}

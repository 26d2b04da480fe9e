import { stringify } from 'smol-toml';
import { RuntimeErrorCode, runtimeError } from './errors.ts';
import type { MirrorSpec } from './mirror.ts';
import type { RuntimesConfig } from './config-schema.ts';
import type { RuntimeTargets } from './target.ts';
import { isTable, parseToml } from './toml.ts';

const HEADER =
  '# Written by harbor-satellite (satellite runtime apply): pulls try the satellite first, then the upstream.\n' +
  '# containers-registries.conf(5) v2; `satellite runtime revert` restores what was here before.\n';

/**
 * CRI-O and podman: a registries.conf v2 drop-in with one [[registry]] per upstream (prefix and
 * location = the upstream) and the satellite as its [[registry.mirror]]. Entries of other
 * prefixes already in the file are kept.
 */
export function crioTargets(config: RuntimesConfig['crio'], spec: MirrorSpec): RuntimeTargets {
  const path = config.dropInFile;
  return { runtime: 'crio', files: [{ runtime: 'crio', path, render: (current, file) => renderRegistriesConf(current, file, spec) }], warnings: [] };
}

export function renderRegistriesConf(current: string | undefined, file: string, spec: MirrorSpec): string {
  const doc = current === undefined ? {} : parseToml(current, file);
  const existing = doc.registry ?? [];
  if (!Array.isArray(existing) || !existing.every(isTable)) {
    throw runtimeError(RuntimeErrorCode.fileInvalid, `${file}: "registry" must be an array of tables ([[registry]]); nothing was changed`);
  }
  const ours = new Set(spec.upstreams.map((u) => u.host));
  const kept = existing.filter((r) => !ours.has(String(r.prefix ?? r.location ?? '')));
  const { mirror } = spec;
  const added = spec.upstreams.map((u) => {
    const entry: Record<string, unknown> = { prefix: u.host, location: u.host === 'docker.io' && u.defaultServer ? 'docker.io' : u.serverHostPort };
    if (u.serverHttp) entry.insecure = true;
    const m: Record<string, unknown> = { location: mirror.hostPort };
    // insecure = plain HTTP allowed / certificate not verified (a CA goes in /etc/containers/certs.d/<host:port>/ca.crt).
    if (mirror.insecure) m.insecure = true;
    entry.mirror = [m];
    return entry;
  });
  const { registry: _r, ...rest } = doc;
  return `${HEADER}${stringify({ ...rest, registry: [...added, ...kept] })}\n`;
}

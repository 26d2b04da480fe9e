import { RuntimeErrorCode, runtimeError } from './errors.ts';
import type { MirrorSpec } from './mirror.ts';
import type { RuntimesConfig } from './config-schema.ts';
import type { RuntimeTargets } from './target.ts';

/** The line `satellite runtime` prints whenever docker is configured. */
export const DOCKER_HUB_ONLY = 'docker uses registry-mirrors for Docker Hub (docker.io) images only';

/**
 * docker: daemon.json `registry-mirrors` (satellite first) and, for plain HTTP or an unverified
 * certificate, `insecure-registries`; every other key is kept, in order.
 */
export function dockerTargets(config: RuntimesConfig['docker'], spec: MirrorSpec): RuntimeTargets {
  const path = config.daemonJson;
  const others = spec.upstreams.filter((u) => u.host !== 'docker.io').map((u) => u.host);
  const warnings = [
    others.length
      ? `${DOCKER_HUB_ONLY}: pulls from ${others.join(', ')} will not use the satellite (use containerd, CRI-O or k3s for those)`
      : DOCKER_HUB_ONLY,
  ];
  if (!spec.upstreams.some((u) => u.host === 'docker.io')) warnings.push('docker.io is not in runtimes.upstreams: the satellite will be asked for Docker Hub images it may not hold (docker then falls back to Docker Hub)');
  return { runtime: 'docker', files: [{ runtime: 'docker', path, render: (current, file) => renderDaemonJson(current, file, spec) }], warnings };
}

const norm = (u: string) => u.replace(/\/+$/, '');

export function renderDaemonJson(current: string | undefined, file: string, spec: MirrorSpec): string {
  let doc: Record<string, unknown> = {};
  if (current !== undefined && current.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(current);
    } catch (err) {
      throw runtimeError(RuntimeErrorCode.fileInvalid, `${file} is not valid JSON: ${(err as Error).message}; nothing was changed`, { cause: err });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw runtimeError(RuntimeErrorCode.fileInvalid, `${file} must hold a JSON object; nothing was changed`);
    }
    doc = parsed as Record<string, unknown>;
  }
  const strings = (key: string): string[] => {
    const v = doc[key] ?? [];
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
      throw runtimeError(RuntimeErrorCode.fileInvalid, `${file}: "${key}" must be an array of strings; nothing was changed`);
    }
    return v;
  };
  const { mirror } = spec;
  const mirrors = strings('registry-mirrors');
  const insecure = strings('insecure-registries');
  doc['registry-mirrors'] = [mirror.url, ...mirrors.filter((m) => norm(m) !== mirror.url)];
  if (mirror.insecure && !insecure.includes(mirror.hostPort)) doc['insecure-registries'] = [...insecure, mirror.hostPort];
  // Keep the file's own indentation.
  const indent = current ? (/^\{\r?\n([ \t]+)"/.exec(current)?.[1] ?? 2) : 2;
  return `${JSON.stringify(doc, null, indent)}\n`;
}

import { SatelliteError } from '../lib/errors.ts';

// dist-spec: <name> grammar, path components separated by '/'.
const NAME_RE = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
// dist-spec: <reference> as a tag.
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
// Keeps keys and paths bounded; distribution uses the same total limit.
export const MAX_NAME_LENGTH = 255;

export function isRepositoryName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function assertRepositoryName(name: string): string {
  if (!isRepositoryName(name)) {
    throw new SatelliteError('NAME_INVALID', `invalid repository name: ${name.slice(0, 300)}`, { statusCode: 400 });
  }
  return name;
}

export function isTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export function assertTag(tag: string): string {
  if (!isTag(tag)) throw new SatelliteError('TAG_INVALID', `invalid tag: ${tag.slice(0, 200)}`, { statusCode: 400 });
  return tag;
}

/**
 * `repo:tag`, `repo@sha256:…` or `repo` (meaning `latest`) split into repository and reference; the
 * last `:` after the last `/` starts a tag, so `host:5000/repo` keeps its port. Nothing is validated.
 */
export function splitReference(ref: string): { repository: string; reference: string } {
  const at = ref.indexOf('@');
  if (at > 0) return { repository: ref.slice(0, at), reference: ref.slice(at + 1) };
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) return { repository: ref.slice(0, colon), reference: ref.slice(colon + 1) };
  return { repository: ref, reference: 'latest' };
}

/**
 * The repository path without a leading registry host: the first of several components is a host
 * when it has a `.` or `:` or is `localhost` (docker's rule), as a mirror sees only the path.
 */
export function withoutRegistryHost(name: string): string {
  const parts = name.split('/');
  const first = parts[0]!;
  return parts.length > 1 && (/[.:]/.test(first) || first === 'localhost') ? parts.slice(1).join('/') : name;
}
